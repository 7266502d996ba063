"""Config loading: defaults, validation messages with file and key path, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.config import ConfigError, default_yaml, load
from tests.support import ROOT


def test_shipped_config_equals_the_embedded_default() -> None:
    assert (ROOT / "config" / "telemetry.yaml").read_text() == default_yaml()


def test_defaults_are_secure_and_match_the_design() -> None:
    config = load(None, environ={})
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 9464
    assert config.debug.enabled is False
    assert config.exporters.prometheus.enabled is True
    assert config.exporters.otlp.enabled is False
    assert config.exporters.statsd.enabled is False
    assert config.tracing.capture_content is False
    assert config.limits.max_series_per_metric == 1000


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "telemetry.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ("server:\n  port: 70000\n", "server.port: Input should be less than or equal to 65535"),
    ("server:\n  port: http\n", "server.port: Input should be a valid integer"),
    ("server:\n  prot: 9464\n", "server.prot: no such key"),
    ("exporters:\n  statsd:\n    flavor: graphite\n", "exporters.statsd.flavor: Input should be"),
    ("exporters:\n  kafka: {enabled: true}\n", "exporters.kafka: no such key"),
    ("limits:\n  max_series_per_metric: 0\n", "limits.max_series_per_metric"),
    ("- just\n- a list\n", "expected a mapping of settings at the top level, found list"),
])
def test_errors_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(path, environ={})
    message = str(raised.value)
    assert message.startswith(str(path))
    assert expected in message


def test_error_says_what_was_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"found 'http'"):
        load(_write(tmp_path, "server:\n  port: http\n"), environ={})


def test_invalid_yaml_points_at_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "server:\n  port: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+:\d+: invalid YAML"):
        load(path, environ={})


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path, environ={})  # a directory


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load(_write(tmp_path, ""), environ={}).server.port == 9464


def test_single_keys_are_overridden_from_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "server:\n  port: 9000\n")
    config = load(path, environ={
        "YOLO_TELEMETRY__SERVER__PORT": "9500",
        "YOLO_TELEMETRY__EXPORTERS__STATSD__ENABLED": "true",
        "YOLO_TELEMETRY__LIMITS__STALE_SERIES_AFTER_S": "3600",
    })
    assert config.server.port == 9500
    assert config.exporters.statsd.enabled is True
    assert config.limits.stale_series_after_s == 3600


def test_a_bad_override_names_its_variable() -> None:
    pattern = r"server\.port: .*\(set by YOLO_TELEMETRY__SERVER__PORT\)"
    with pytest.raises(ConfigError, match=pattern):
        load({}, environ={"YOLO_TELEMETRY__SERVER__PORT": "many"})


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "service_name: from-file\n")
    assert load(None, environ={"YOLO_TELEMETRY_CONFIG": str(path)}).service_name == "from-file"


def test_opentelemetry_standard_variables_are_honoured() -> None:
    config = load({}, environ={
        "OTEL_SERVICE_NAME": "orchestrator-7",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc,tenant=t1",
        "OTEL_METRIC_EXPORT_INTERVAL": "2500",
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
    })
    assert config.service_name == "orchestrator-7"
    otlp = config.exporters.otlp
    assert (otlp.endpoint, otlp.protocol) == ("http://127.0.0.1:4317", "grpc")
    assert otlp.headers == {"api-key": "abc", "tenant": "t1"}
    assert otlp.interval_s == 2.5
    assert (config.tracing.sampler, config.tracing.sampler_ratio) == ("traceidratio", 0.25)


def test_yolo_variables_win_over_otel_ones() -> None:
    config = load({}, environ={"OTEL_SERVICE_NAME": "a", "YOLO_TELEMETRY__SERVICE_NAME": "b"})
    assert config.service_name == "b"


def test_debug_beyond_loopback_requires_auth() -> None:
    with pytest.raises(ConfigError, match=r"debug\.enabled: .*need server\.auth"):
        load({"server": {"host": "0.0.0.0"}, "debug": {"enabled": True}}, environ={})
    config = load({"server": {"host": "0.0.0.0", "auth": {"bearer_token": "x" * 32}},
                   "debug": {"enabled": True}}, environ={})
    assert config.debug.enabled


# -- numbers that validate but break things later --------------------------------------


@pytest.mark.parametrize(("text", "key"), [
    ("exporters:\n  statsd:\n    flush_interval_s: .inf\n", "exporters.statsd.flush_interval_s"),
    ("exporters:\n  otlp:\n    interval_s: .inf\n", "exporters.otlp.interval_s"),
    ("exporters:\n  statsd:\n    max_backoff_s: .inf\n", "exporters.statsd.max_backoff_s"),
    ("windows:\n  error_rate_s: .inf\n", "windows.error_rate_s"),
    ("limits:\n  stale_series_after_s: .inf\n", "limits.stale_series_after_s"),
    ("tracing:\n  open_span_ttl_s: .inf\n", "tracing.open_span_ttl_s"),
    ("debug:\n  slow:\n    threshold_s: .inf\n", "debug.slow.threshold_s"),
    ("alerting:\n  webhook:\n    max_backoff_s: .inf\n", "alerting.webhook.max_backoff_s"),
])
def test_infinite_and_nan_durations_are_refused(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(path, environ={})
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: ")
    assert "finite" in message and ("inf" in message or "nan" in message)


@pytest.mark.parametrize(("text", "key"), [
    ("exporters:\n  statsd:\n    flush_interval_s: 1e300\n", "exporters.statsd.flush_interval_s"),
    ("tracing:\n  batch:\n    schedule_delay_ms: 99999999999999\n",
     "tracing.batch.schedule_delay_ms"),
])
def test_durations_longer_than_a_year_are_refused(tmp_path: Path, text: str, key: str) -> None:
    # Finite, but a timer wait on them raises OverflowError in the exporter's thread.
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{path}: {key}: expected at most \d+ \(365 days\)"):
        load(path, environ={})
    assert load(_write(tmp_path, "limits:\n  stale_series_after_s: 2592000\n"),
                environ={}).limits.stale_series_after_s == 2592000


# OTEL_* variables with such values are ignored with a warning instead:
# tests/unit/config/test_otel_environment.py.
@pytest.mark.parametrize(("variable", "value"), [
    ("YOLO_TELEMETRY__WINDOWS__ERROR_RATE_S", ".inf"),
    ("YOLO_TELEMETRY__EXPORTERS__STATSD__FLUSH_INTERVAL_S", ".inf"),
])
def test_infinite_durations_from_the_environment_name_the_variable(variable: str,
                                                                    value: str) -> None:
    with pytest.raises(ConfigError, match=rf"{variable}.*finite|finite.*{variable}"):
        load({}, environ={variable: value})


def test_an_auth_section_without_credentials_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"server\.auth: expected basic or bearer_token"):
        load({"server": {"auth": {}}}, environ={})
    with pytest.raises(ConfigError, match=r"server\.auth: expected basic or bearer_token"):
        load({"server": {"auth": {"allow_unauthenticated_live": False}}}, environ={})
    assert load({"server": {"auth": {"bearer_token": "t" * 16}}}, environ={}).server.auth


@pytest.mark.parametrize(("text", "key"), [
    ("server:\n  port: true\n", "server.port"),
    ("exporters:\n  statsd:\n    port: true\n", "exporters.statsd.port"),
    ("limits:\n  max_series_per_metric: yes\n", "limits.max_series_per_metric"),
    ("windows:\n  buckets: true\n", "windows.buckets"),
    ("server:\n  port_range: [true, 9500]\n", "server.port_range"),
])
def test_booleans_are_not_numbers(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{path}: {key}: .*found .*(True|False)"):
        load(path, environ={})


def test_a_key_given_twice_is_an_error_naming_it_and_its_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "server:\n  port: 9000\n  host: 127.0.0.1\n  port: 9500\n")
    with pytest.raises(ConfigError) as raised:
        load(path, environ={})
    assert str(raised.value) == (f"{path}:4:3: invalid YAML: duplicate key 'port' "
                                 f"(first given on line 2)")
    with pytest.raises(ConfigError, match=r":3:1: invalid YAML: duplicate key 'server'"):
        load(_write(tmp_path, "server: {}\nlimits: {}\nserver: {port: 1}\n"), environ={})


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    path = _write(tmp_path, "server:\n  <<: {port: 9000, host: 127.0.0.2}\n  port: 9500\n")
    server = load(path, environ={}).server
    assert (server.host, server.port) == ("127.0.0.2", 9500)


def test_deeply_nested_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "server: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(ConfigError, match=rf"^{path}: invalid YAML: nested too deeply"):
        load(path, environ={})


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "telemetry.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            load(fifo, environ={})
            outcome.append(None)
        except ConfigError as error:
            outcome.append(error)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # release the blocked reader so the test process can exit
        with open(fifo, "w"):
            pass
        pytest.fail("loading a FIFO blocked")
    assert isinstance(outcome[0], ConfigError)
    assert str(outcome[0]) == f"{fifo}: cannot read the config file: not a regular file"


def test_max_label_length_caps_the_orchestrators_labels_not_telemetrys_own() -> None:
    from telemetry import catalogue as cat
    from telemetry import signals
    from telemetry.runtime import Telemetry

    config = load({"server": {"enabled": False}, "limits": {"max_label_length": 8}},
                  environ={})
    with Telemetry(config) as tel:
        signals.handoff_completed.send(None, from_agent="architect", to_agent="developer",
                                       duration_s=1.0)
        signals.handoff_completed.send(None, from_agent="pm")  # invalid: no to_agent
        families = {family.spec: family for family in tel.aggregator.collect()}
    handoff_labels = {s.labels for s in families[cat.HANDOFFS].samples}
    assert handoff_labels == {("archite…", "develop…")}
    own_signals = {s.labels[0] for s in families[cat.EVENTS].samples}
    assert "yolo.handoff_completed" in own_signals
    invalid = {s.labels[0] for s in families[cat.INVALID_EVENTS].samples}
    assert invalid == {"yolo.handoff_completed"}
    alert_names = {s.labels[0] for s in families[cat.ALERTS_FIRING].samples}
    assert "HighErrorRate" in alert_names and "TelemetryInvalidEvents" in alert_names


def test_the_timestamp_window_is_not_bounded_by_a_year_but_must_be_finite() -> None:
    """The window only compares times (nothing waits on it), so replaying old events may
    use a wide one; infinity and more than 2**53 s are still refused."""
    wide = load({"limits": {"timestamp_window_s": 1e13}}, environ={})
    assert wide.limits.timestamp_window_s == 1e13
    for value in (float("inf"), 2.0**54):
        with pytest.raises(ConfigError, match=r"limits\.timestamp_window_s"):
            load({"limits": {"timestamp_window_s": value}}, environ={})


@pytest.mark.parametrize(("value", "expected", "found"), [
    ("10", "greater than or equal to 100", "found 10"),
    ("lots", "valid integer", "found 'lots'"),
    ("1000000000", "less than or equal to 100000000", "found 1000000000"),
])
def test_the_alert_history_cap_is_checked(tmp_path: Path, value: str, expected: str,
                                          found: str) -> None:
    path = _write(tmp_path, f"alerting:\n  max_history_rows: {value}\n")
    with pytest.raises(ConfigError) as error:
        load(path, environ={})
    message = str(error.value)
    assert message.startswith(f"{path}: alerting.max_history_rows: ")
    assert expected in message and found in message
    assert load(_write(tmp_path, "alerting:\n  max_history_rows: 5000\n"),
                environ={}).alerting.max_history_rows == 5000
