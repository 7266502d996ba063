"""OTLP exporter: metrics pushed on an interval, spans batched, over HTTP or gRPC.

Entry module: :mod:`exporters.otlp.exporter`, its config section in
:mod:`~exporters.otlp.config`; what an export sends in :mod:`~exporters.otlp.points`,
as OpenTelemetry metric data in :mod:`~exporters.otlp.metrics`, the span pipeline in
:mod:`~exporters.otlp.traces` and :mod:`~exporters.otlp.batch`, and the pre-encoded
fast path (which relies on OpenTelemetry SDK internals) in :mod:`exporters.otlp.fastpath`.
Importing this package is cheap: OpenTelemetry is imported when the exporter starts.
"""

from exporters.otlp.exporter import OtlpExporter

__all__ = ["OtlpExporter"]
