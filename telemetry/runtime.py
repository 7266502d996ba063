"""The running telemetry: aggregator, exporters and server behind one handle."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from telemetry import config as config_module
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.reentry import held_by_this_thread
from telemetry.alerting.builtins import effective_alerts
from telemetry.alerting.evaluator import AlertEvaluator
from telemetry.alerting.webhook import WebhookNotifier
from telemetry.config import ConfigError, TelemetryConfig
from telemetry.metrics import AgentMetrics, SystemMetrics
from telemetry.plugins import discover, package_version
from telemetry.profiling import timing as profiled_timing
from telemetry.profiling.endpoints import Profiling
from telemetry.profiling.overhead import overhead_check
from telemetry.serving.discovery import FileSdRegistration, advertised_address
from telemetry.serving.health import HealthCheck, health_document, http_status
from telemetry.serving.server import Request, Response, TelemetryServer

if TYPE_CHECKING:
    # Only for annotations: importing exporters here would close the circle
    # exporters -> telemetry.plugins -> telemetry (package) -> runtime -> exporters.
    from exporters import Exporter

log = logging.getLogger("telemetry")

#: The most recently started Telemetry while it runs: what ``telemetry.profiled`` records to.
_current: Telemetry | None = None


def current() -> Telemetry | None:
    """The running Telemetry that module-level helpers (``profiled``) report to, if any."""
    return _current


#: Started handles, so a forked child can make its inherited ones inert.
_LIVE: weakref.WeakSet[Telemetry] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _current
    _current = None
    profiled_timing.unroute()
    for tel in list(_LIVE):
        tel._abandon_after_fork()
    _LIVE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Telemetry:
    """Handle returned by :func:`telemetry.start`.

    States: ``created`` -> ``running`` -> ``stopping`` -> ``stopped``. /health/ready
    answers 200 only while ``running``.
    """

    def __init__(self, config: TelemetryConfig) -> None:
        self.config = config
        self.instance_id = str(uuid.uuid4())
        limits, windows = config.limits, config.windows
        self.aggregator = Aggregator(
            max_series=limits.max_series_per_metric,
            max_label_length=limits.max_label_length,
            error_rate_window_s=windows.error_rate_s,
            window_buckets=windows.buckets,
            stale_after_s=limits.stale_series_after_s,
            timestamp_window_s=limits.timestamp_window_s,
            **config.operations.aggregator_settings(),
        )
        self.exporters: dict[str, Exporter] = self._build_exporters()
        self.server: TelemetryServer | None = (
            TelemetryServer(config.server) if config.server.enabled else None)
        self.health_checks: dict[str, HealthCheck] = {}
        self.profiling: Profiling | None = None
        self.registration: FileSdRegistration | None = None
        self.alerting: AlertEvaluator | None = None
        self.state = "created"
        self._stop_lock = threading.RLock()

    def _build_exporters(self) -> dict[str, Exporter]:
        available = discover()
        built = {}
        for name, section in self.config.exporters:
            if not section.enabled:
                continue
            cls = available.get(name)
            if cls is None:
                raise ConfigError(f"{self.config.source}: exporters.{name}: the exporter "
                                  f"is enabled but its plugin could not be loaded")
            built[name] = cls(section, self.aggregator, self.config)
            built[name].instance_id = self.instance_id
        return built

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Telemetry:
        if self.state != "created":
            return self
        self.aggregator.connect()
        if self.server is not None:
            self._add_routes(self.server)
        self.profiling = self._install_profiling()
        if self.server is not None:
            try:
                self.server.start()
            except BaseException:
                self.stop()
                raise
        for name, exporter in self.exporters.items():
            try:
                exporter.start()
            except ConfigError:
                self.stop()
                raise
            except ImportError as error:
                self.stop()
                raise ConfigError(f"{self.config.source}: exporters.{name}: a package it needs "
                                  f"is missing ({error.name}); install "
                                  f"yolo-telemetry[{name}]") from None
            except Exception as error:
                exporter.status.failed(error, self.aggregator)
                log.warning("exporter %s failed to start: %s; /health shows it failing", name,
                            error)
        self._register_for_discovery()
        self.alerting = self._attach_alerting()
        self.state = "running"
        _LIVE.add(self)
        global _current
        _current = self
        profiled_timing.route_to(self.aggregator, self.profiling.slow if self.profiling else None)
        atexit.register(self.stop)
        log.info("telemetry running%s", f" on {self.server.url}" if self.server else "")
        return self

    def _install_profiling(self) -> Profiling | None:
        """Add the overhead check; with ``debug.enabled``, also the /debug routes and
        (with ``debug.slow.enabled``) the slow-operation sampler."""
        self.add_health_check("overhead", overhead_check(self.aggregator))
        if not self.config.debug.enabled:
            return None
        return Profiling(self.aggregator, self.config.debug, self.server)

    def _attach_alerting(self) -> AlertEvaluator | None:
        """Build and start the evaluator (and webhook) the config asks for; None if none.

        Registers the ``alerts`` (and ``alert_webhook``) health checks.
        """
        config = self.config
        alerts = effective_alerts(config.alerts, config.alerting)
        if not config.alerting.enabled or not alerts:
            return None
        notifier = None
        if config.alerting.webhook.enabled:
            notifier = WebhookNotifier(config.alerting.webhook, self.aggregator,
                                       external_url=self.url or "",
                                       receiver=config.service_name)
            self.add_health_check("alert_webhook", notifier.health)
        evaluator = AlertEvaluator(alerts, self.aggregator,
                                   interval_s=config.alerting.evaluation_interval_s,
                                   max_samples=config.alerting.max_samples,
                                   max_rows=config.alerting.max_history_rows, notifier=notifier)
        self.add_health_check("alerts", evaluator.health)
        return evaluator.start()

    def _register_for_discovery(self) -> None:
        directory = self.config.discovery.file_sd_dir
        if directory is None or self.server is None:
            return
        address = advertised_address(self.config.server.host, self.server.port,
                                     self.config.discovery.advertise_host)
        self.registration = FileSdRegistration(
            directory, service=self.config.service_name, instance_id=self.instance_id,
            address=address, labels=self.config.discovery.labels)
        try:
            self.registration.register()
        except OSError as error:
            self.stop()
            raise ConfigError(f"discovery.file_sd_dir: cannot write {directory}: "
                              f"{error}") from None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Flush every exporter and close the server; safe to call more than once, from
        any thread, a signal handler, a finalizer or ``atexit``, and bounded in time.

        Called while this thread is inside telemetry's own per-event code (a signal
        handler or finalizer that interrupted a send), the stop is deferred until that
        code has released its lock, microseconds later and on this same thread: the
        interrupted update finishes first (or is unwound by the handler's exception)
        and the final flush then reads whole aggregates (docs/operations.md).
        """
        guard = held_by_this_thread()
        if guard is not None:
            guard.defer(functools.partial(self.stop, timeout_s))
            return
        with self._stop_lock:
            if self.state in ("stopping", "stopped"):
                return
            self.state = "stopping"
        global _current
        if _current is self:
            _current = None
        profiled_timing.unroute(self.aggregator)
        if self.registration is not None:
            self.registration.remove()  # first, so Prometheus stops scraping us
        if self.alerting is not None:
            self.alerting.stop(min(timeout_s, 5.0))
        self.aggregator.disconnect()
        if self.profiling is not None:
            self.profiling.stop()
        per_exporter = timeout_s / max(len(self.exporters), 1)
        for name, exporter in self.exporters.items():
            try:
                exporter.stop(per_exporter)
            except Exception:
                log.exception("exporter %s failed to stop cleanly", name)
        if self.server is not None:
            self.server.stop()
        self.state = "stopped"
        atexit.unregister(self.stop)

    def _abandon_after_fork(self) -> None:
        """In a forked child: drop what belongs to the parent without waiting on it.

        Only the forking thread survives a fork, so the server and exporter threads
        are gone and any lock another thread held stays held forever. The child's copy
        stops listening to signals, gets fresh locks, closes the inherited listening
        socket and becomes ``forked``; the child calls :func:`start` for telemetry of
        its own (its own port, its own counts, its own instance id).
        """
        self.aggregator.renew_locks()  # first: disconnect() takes the lock
        self.aggregator.disconnect()
        self._stop_lock = threading.RLock()
        self.alerting = None  # its thread did not survive the fork
        if self.server is not None:
            self.server.close_inherited()
        atexit.unregister(self.stop)
        self.state = "forked"

    def __enter__(self) -> Telemetry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- reading -----------------------------------------------------------------

    def snapshot(self) -> tuple[AgentMetrics, SystemMetrics]:
        return self.aggregator.snapshot()

    def add_health_check(self, name: str, check: HealthCheck) -> None:
        """Add a named check to /health; it returns a dict with a ``status`` key."""
        self.health_checks[name] = check

    def health(self) -> dict[str, Any]:
        agent, system = self.snapshot()
        checks: dict[str, dict[str, Any]] = {
            f"exporter:{name}": exporter.health() for name, exporter in self.exporters.items()}
        for name, check in self.health_checks.items():
            try:
                checks[name] = check()
            except Exception as error:
                checks[name] = {"status": "failing", "last_error": repr(error)}
        service = {"service": self.config.service_name, "version": package_version(),
                   "instance_id": self.instance_id, "pid": os.getpid()}
        return health_document(state=self.state, agent=agent, system=system, checks=checks,
                               config=self.config.health, service=service)

    # -- HTTP --------------------------------------------------------------------

    def _add_routes(self, server: TelemetryServer) -> None:
        server.route("/metrics", self._metrics)
        server.route("/health", self._health)
        server.route("/health/live", lambda _: Response.json({"status": "alive"}), public=True)
        server.route("/health/ready", self._ready)
        # Connections the server closes (over the cap, or past the request deadline)
        # are counted like every other drop, and their totals shown in /health.
        server.connections.on_drop = functools.partial(self.aggregator.count_dropped,
                                                       "http_server")
        self.add_health_check("http_server", lambda: {"status": "ok",
                                                      **server.connections.stats()})

    def _metrics(self, request: Request) -> Response:
        prometheus = self.exporters.get("prometheus")
        if prometheus is None:
            return Response.text("the prometheus exporter is disabled\n", 404)
        body, content_type = prometheus.render(request.headers.get("Accept"),
                                               request.query.get("name[]"))
        return Response(200, body, content_type, compressible=True)

    def _health(self, _: Request) -> Response:
        document = self.health()
        return Response.json(document, http_status(document))

    def _ready(self, _: Request) -> Response:
        ready = self.state == "running"
        return Response.json({"status": "ready" if ready else self.state}, 200 if ready else 503)

    @property
    def url(self) -> str | None:
        return self.server.url if self.server else None


def start(source: str | os.PathLike | Mapping | TelemetryConfig | None = None) -> Telemetry:
    """Load the config (path, dict, config object or the default) and start telemetry."""
    return Telemetry(config_module.load(source)).start()
