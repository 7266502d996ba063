"""Tracing: spans built from the same signals the aggregator receives.

Entry module: :mod:`telemetry.tracing.tracer` (:class:`SignalTracer`), which needs the
``otlp`` extra; it is imported only when the OTLP exporter turns tracing on, so this
package imports nothing itself. The tracer's handlers are in
:mod:`telemetry.tracing.handlers` (what each signal does to spans), the spans
themselves in :mod:`telemetry.tracing.spans` (records, builder, open-span table);
:mod:`~telemetry.tracing.live` makes our open spans the current OpenTelemetry span.
:mod:`~telemetry.tracing.traced` and :mod:`~telemetry.tracing.propagation` are what an
orchestrator may use directly; they work without OpenTelemetry installed.
"""
