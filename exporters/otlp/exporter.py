"""OTLP exporter: periodic push of the aggregates, and spans built from the signals.

Metrics: every ``interval_s`` a :class:`~exporters.PeriodicWorker` encodes one
:meth:`Aggregator.copy_series` as an OTLP request (:mod:`exporters.otlp.fastpath.metric_encoding`,
the mapping of :mod:`exporters.otlp.metrics`) and sends it with the OpenTelemetry
OTLP metric exporter (:mod:`exporters.otlp.fastpath.metric_http`,
:mod:`exporters.otlp.fastpath.metric_grpc`). Nothing runs per event, so enabling OTLP metrics
does not change the cost of a signal. Data is cumulative (or delta since the last
accepted export, when preferred: :mod:`exporters.otlp.points`), so a failed export
loses nothing: the next interval carries the same totals, or the longer change.

Traces: when ``traces`` is on and ``tracing.enabled`` is true, a
:class:`telemetry.tracing.tracer.SignalTracer` listens to the aggregator and builds spans
with an SDK ``TracerProvider`` (configured sampler, the span queue and batch worker
of :mod:`exporters.otlp.batch` with the ``tracing.batch`` limits, OTLP span
exporter over the same protocol and endpoint, with the span encoding of
:mod:`exporters.otlp.fastpath.span_encoding`).

Failures are counted (``status.failed``), shown in /health and retried; nothing is
raised into the orchestrator. :meth:`OtlpExporter.stop` makes a final export and
shuts down within its timeout even when the collector is dead.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exporters import Exporter, ExporterStatus, PeriodicWorker
from exporters.otlp.config import DEFAULT_ENDPOINTS, OtlpConfig
from exporters.otlp.fastpath.sdk_path import export_path
from exporters.otlp.partial import PartialSuccess, watch_answers
from exporters.otlp.points import ExportPoints

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from exporters.otlp.traces import GuardedSpanExporter
    from telemetry.tracing.tracer import SignalTracer

log = logging.getLogger("telemetry.exporters.otlp")
SCOPE_NAME = "yolo-telemetry"

__all__ = ["DEFAULT_ENDPOINTS", "SCOPE_NAME", "OtlpConfig", "OtlpExporter"]


class OtlpExporter(Exporter):
    name = "otlp"
    Config = OtlpConfig

    def __init__(self, config: OtlpConfig, aggregator: Any, telemetry: Any) -> None:
        super().__init__(config, aggregator, telemetry)
        #: ``self.status`` reports metrics; traces fail and recover independently.
        self.trace_status = ExporterStatus(self.name)
        #: What the collector rejected from accepted exports (OTLP partial success).
        self.metric_rejects = PartialSuccess("metrics", aggregator)
        self.span_rejects = PartialSuccess("traces", aggregator)
        self.tracer: SignalTracer | None = None
        self._metric_exporter: MetricExporter | None = None
        self._worker: PeriodicWorker | None = None
        self._provider: TracerProvider | None = None
        #: The application's own global SDK provider, when telemetry's spans go through it.
        self._app_provider: TracerProvider | None = None
        self._span_exporter: GuardedSpanExporter | None = None
        self._export_lock = threading.Lock()
        self._build: Callable[[list[Any], int], Any] | None = None
        #: Recorded series only, and deltas when preferred (:mod:`exporters.otlp.points`).
        self._points = ExportPoints(config.delta)
        self._resource: Any = None
        self._scope: Any = None
        self._stopped = False
        self._tracks_min_max = False
        #: signal -> its /health export path detail (:mod:`exporters.otlp.fastpath.sdk_path`).
        self._export_paths: dict[str, dict[str, str]] = {}

    @property
    def tracer_provider(self) -> TracerProvider | None:
        """The SDK provider behind the signal tracer (None when tracing is off): add
        span processors of your own to it, or ``force_flush`` it. The application's
        own global provider when telemetry's spans go through it
        (:mod:`telemetry.tracing.provider`)."""
        return self._provider or self._app_provider

    @property
    def tracing_enabled(self) -> bool:
        tracing = getattr(self.telemetry, "tracing", None)
        return bool(self.config.traces and tracing is not None and tracing.enabled)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from exporters.otlp.metrics import SCHEMA_URL, build_resource, to_metrics_data
        from telemetry.plugins import package_version

        version = package_version()
        resource = build_resource(getattr(self.telemetry, "service_name", "yolo"),
                                  self.instance_id or str(uuid.uuid4()), version)
        scope = InstrumentationScope(SCOPE_NAME, version, SCHEMA_URL)
        self._resource, self._scope = resource, scope
        if self.config.metrics:
            delta = self.config.delta
            if not delta:  # a cumulative point's min and max: those of the series' life
                self.aggregator.histogram_features(min_max=True)
                self._tracks_min_max = True
            self._build = lambda series, now_ns: to_metrics_data(series, resource, scope,
                                                                 now_ns, delta)
            self._metric_exporter = self.make_metric_exporter()
            self._export_paths["metrics"] = export_path(self._metric_exporter, "metrics")
            watch_answers(self._metric_exporter, self.metric_rejects)
            self._worker = PeriodicWorker("otlp-metrics", self.config.interval_s,
                                          self.export_metrics, self.status, self.aggregator)
            self._worker.start()
        if self.tracing_enabled:
            self._start_tracing(resource, version)

    def _start_tracing(self, resource: Any, version: str) -> None:
        from opentelemetry.sdk.trace import TracerProvider

        from exporters.otlp.batch import SpanBatchProcessor
        from exporters.otlp.metrics import SCHEMA_URL
        from exporters.otlp.traces import GuardedSpanExporter, make_sampler
        from telemetry.tracing.provider import application_provider, share
        from telemetry.tracing.tracer import SignalTracer

        tracing = self.telemetry.tracing
        limits = getattr(self.telemetry, "limits", None)
        max_text = limits.max_label_length if limits else 128
        app = application_provider() if tracing.global_provider else None
        if app is not None:  # one pipeline for every span: the application's
            self._app_provider = app
            self.trace_status.succeeded()
            self.tracer = SignalTracer(app.get_tracer(SCOPE_NAME, version, SCHEMA_URL),
                                       self.aggregator, tracing, max_text_length=max_text)
            self.tracer.attach()
            return
        span_exporter = self.make_span_exporter()
        self._export_paths["traces"] = export_path(span_exporter, "traces")
        watch_answers(span_exporter, self.span_rejects)
        self._span_exporter = GuardedSpanExporter(span_exporter, self.trace_status,
                                                  self.aggregator)
        self._span_exporter.genai_provider = getattr(tracing, "genai_provider", None)
        self._provider = TracerProvider(sampler=make_sampler(tracing), resource=resource,
                                        shutdown_on_exit=False)
        self._provider.add_span_processor(
            SpanBatchProcessor(self._span_exporter, tracing.batch, self.aggregator))
        self.tracer = SignalTracer(self._provider.get_tracer(SCOPE_NAME, version, SCHEMA_URL),
                                   self.aggregator, tracing, max_text_length=max_text)
        self.tracer.attach()
        if tracing.global_provider:  # other instrumentation's spans go out with ours
            share(self._provider)

    def make_metric_exporter(self) -> MetricExporter:
        """The OpenTelemetry OTLP metric exporter for the configured protocol, which
        also encodes the series itself (:mod:`exporters.otlp.fastpath.metric_encoding`)."""
        cfg, endpoint = self.config, self.config.signal_endpoint("metrics")
        headers = cfg.signal_headers("metrics") or None
        if cfg.signal_protocol("metrics") == "grpc":
            from exporters.otlp.fastpath.metric_grpc import FastGrpcMetricExporter
            return FastGrpcMetricExporter(self._resource, self._scope, cfg.delta,
                                          endpoint=endpoint, headers=headers,
                                          timeout=cfg.signal_timeout("metrics"))
        from exporters.otlp.fastpath.metric_http import FastHttpMetricExporter
        return FastHttpMetricExporter(self._resource, self._scope, cfg.delta, endpoint=endpoint,
                                      headers=headers, timeout=cfg.signal_timeout("metrics"))

    def make_span_exporter(self) -> SpanExporter:
        """The OpenTelemetry OTLP span exporter for the configured protocol, with the
        fast span encoding (:mod:`exporters.otlp.fastpath.span_encoding`)."""
        cfg, endpoint = self.config, self.config.signal_endpoint("traces")
        headers = cfg.signal_headers("traces") or None
        if cfg.signal_protocol("traces") == "grpc":
            from exporters.otlp.fastpath.span_grpc import FastGrpcSpanExporter
            return FastGrpcSpanExporter(endpoint=endpoint, headers=headers,
                                        timeout=cfg.signal_timeout("traces"))
        from exporters.otlp.fastpath.span_http import FastHttpSpanExporter
        return FastHttpSpanExporter(endpoint=endpoint, headers=headers,
                                    timeout=cfg.signal_timeout("traces"))

    # -- metrics -----------------------------------------------------------------

    def export_metrics(self) -> bool:
        """Collect and send once; True when the collector accepted it. Never raises."""
        exporter, build = self._metric_exporter, self._build
        if exporter is None or build is None:
            return True
        from opentelemetry.sdk.metrics.export import MetricExportResult

        export_series = getattr(exporter, "export_series", None)
        timeout_millis = self.config.signal_timeout("metrics") * 1000
        from opentelemetry import context as otel_context

        from exporters.otlp.batch import QUIET

        with self._export_lock:
            quiet = otel_context.attach(QUIET)  # no span of the export from instrumentation
            try:
                now_ns = time.time_ns()
                series = self._points.prepare(self.aggregator.copy_series(), now_ns)
                if export_series is not None:  # encodes the series itself
                    result = export_series(series, timeout_millis, now_ns=now_ns)
                else:
                    result = exporter.export(build(series, now_ns),
                                             timeout_millis=timeout_millis)
            except Exception as error:  # encoding or transport bug: report, do not raise
                self.status.failed(error, self.aggregator)
                return False
            finally:
                otel_context.detach(quiet)
            if result is MetricExportResult.SUCCESS:
                self._points.commit()
                self.status.succeeded()
                return True
            self.status.failed(f"metric export to {self.config.signal_endpoint('metrics')} "
                               f"failed (refused or unreachable)", self.aggregator)
            return False

    # -- flush and stop ------------------------------------------------------------

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export metrics and queued spans now, waiting at most ``timeout_s``."""
        tasks = []
        if self._metric_exporter is not None:
            tasks.append(self.export_metrics)
        provider = self._provider or self._app_provider
        if provider is not None:
            status = self.trace_status
            tasks.append(lambda: provider.force_flush(int(timeout_s * 1000))
                         and status.state != "failing")
        results = _run_all(tasks, timeout_s)
        return all(result is True for result in results)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Final export of metrics and spans, then shut down; bounded by ``timeout_s``.

        The tracer is detached first and its open spans ended (counted as
        ``unfinished``), so they are part of the final batch. If the collector does
        not answer in time the exporters are shut down mid-retry and what was not
        sent is counted as dropped.
        """
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout_s
        if self._worker is not None:
            self._worker.stop(min(0.5, timeout_s / 4))
        if self.tracer is not None:
            self.tracer.close()
        self.flush(max(deadline - time.monotonic(), 0.05))
        if self._span_exporter is not None:
            self._span_exporter.give_up()  # no-op after a good flush; else interrupts retries
        if self._provider is not None:
            from telemetry.tracing.provider import unshare

            provider = self._provider
            unshare(provider)
            _run_all([provider.shutdown], max(deadline - time.monotonic(), 0.05))
        if self._metric_exporter is not None:
            metric_exporter = self._metric_exporter
            _run_all([lambda: metric_exporter.shutdown(timeout_millis=100)],
                     max(deadline - time.monotonic(), 0.05))
        if self._tracks_min_max:
            self._tracks_min_max = False
            self.aggregator.histogram_features(min_max=False)

    # -- health --------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        parts: dict[str, dict[str, Any]] = {}
        if self.config.metrics:
            parts["metrics"] = {**self.status.as_dict(), **self.metric_rejects.as_dict(),
                                **self._export_paths.get("metrics", {})}
        if self.tracing_enabled:
            parts["traces"] = {**self.trace_status.as_dict(), **self.span_rejects.as_dict(),
                               **self._export_paths.get("traces", {})}
            if self._app_provider is not None:  # its exporters are the application's
                parts["traces"]["provider"] = "application"
        states = [part["status"] for part in parts.values()]
        status = ("disabled" if not states else "failing" if "failing" in states
                  else "starting" if "starting" in states else "ok")
        errors = sorted((p for p in parts.values() if p["last_error_at"]),
                        key=lambda p: p["last_error_at"])
        return {
            "status": status,
            "endpoint": self.config.endpoint or DEFAULT_ENDPOINTS[self.config.protocol],
            "protocol": self.config.protocol,
            "last_error": errors[-1]["last_error"] if errors else None,
            "failures": sum(p["failures"] for p in parts.values()),
            **parts,
        }


def _run_all(tasks: list[Callable[[], Any]], timeout_s: float) -> list[Any]:
    """Run ``tasks`` concurrently on daemon threads; wait at most ``timeout_s`` in total.

    Returns each task's result, or None for one that raised or did not finish, so a
    collector that hangs cannot hold up the orchestrator's shutdown.
    """
    results: list[Any] = [None] * len(tasks)

    def run(index: int, task: Callable[[], Any]) -> None:
        try:
            results[index] = task()
        except Exception:
            log.exception("OTLP flush task failed")

    threads = []
    for index, task in enumerate(tasks):
        thread = threading.Thread(target=run, args=(index, task), name="otlp-flush", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            # Python 3.12.0 and 3.12.1 refuse new threads in atexit hooks: run it here
            # (bounded by the exporter's own timeout) rather than skip the final flush.
            run(index, task)
            continue
        threads.append(thread)
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return results
