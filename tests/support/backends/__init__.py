"""Start real monitoring backends on loopback for tests, and read back what they received.

The exporters of yolo-telemetry are only trustworthy if a real consumer accepts their
output, so these helpers run the genuine programs rather than fakes:

* Prometheus (Debian's ``/usr/bin/prometheus``) scraping targets, plus ``promtool`` checks;
* rotel, a Rust OTLP collector shipped on PyPI, whose detailed debug log is parsed back
  into span and metric dictionaries;
* the Etsy StatsD daemon from npm, queried through its TCP management interface.

Every server binds 127.0.0.1 on free ports, lives in a per-test temporary directory and
is torn down (SIGTERM, then SIGKILL) when its context manager exits. Waiting is always
polling against a deadline: machines in CI are slow (2 cores), so deadlines are generous,
but a healthy run returns as soon as the condition holds.

If a backend program is missing the helpers skip the test, unless
``YOLO_TELEMETRY_REQUIRE_BACKENDS=1`` (set by CI) turns that into a failure, so a broken
install can never pass silently.
"""

from tests.support.backends.common import (
    DEFAULT_TIMEOUT,
    LOOPBACK,
    BackendTimeout,
    free_port,
    require_backend,
    wait_until,
)
from tests.support.backends.js_inspect import parse_js_inspect
from tests.support.backends.prometheus import (
    PrometheusServer,
    prometheus_server,
    promtool_check_metrics,
    promtool_check_rules,
    promtool_test_rules,
)
from tests.support.backends.rotel import RotelReceiver, rotel_receiver
from tests.support.backends.rotel_parser import parse_rotel_output
from tests.support.backends.statsd import StatsdDaemon, statsd_daemon

__all__ = [
    "DEFAULT_TIMEOUT",
    "LOOPBACK",
    "BackendTimeout",
    "PrometheusServer",
    "RotelReceiver",
    "StatsdDaemon",
    "free_port",
    "parse_js_inspect",
    "parse_rotel_output",
    "prometheus_server",
    "promtool_check_metrics",
    "promtool_check_rules",
    "promtool_test_rules",
    "require_backend",
    "rotel_receiver",
    "statsd_daemon",
    "wait_until",
]
