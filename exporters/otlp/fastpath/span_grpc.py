"""The OTLP/gRPC span exporter with the tracer's fast encoding.

:class:`FastGrpcSpanExporter` is the SDK's gRPC ``OTLPSpanExporter`` (same channel,
retries, headers and TLS) that also takes the tracer's finished tuples
(:meth:`~FastGrpcSpanExporter.export_records`): their request is parsed from the
bytes :class:`~exporters.otlp.fastpath.span_encoding.SpanEncoder` writes (parsing is done in
C by protobuf, and is cheap) instead of built by the SDK's encoder. A batch the
encoder does not handle, and SDK spans (``export``), go through the SDK's encoder.

Imports gRPC: import it only when tracing over gRPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from exporters.otlp.fastpath.span_encoding import SpanEncoder, Unsupported
from telemetry.tracing.spans.record import to_readable


class FastGrpcSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (gRPC) whose request for finished tuples is parsed from
    :class:`SpanEncoder`'s bytes."""

    #: Its stub can be wrapped to read partial success (:mod:`exporters.otlp.partial`).
    grpc = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = SpanEncoder()

    def export_records(self, spans: Sequence[tuple]) -> SpanExportResult:
        """Send finished tuples (:mod:`telemetry.tracing.spans.record`)."""
        return self._export(spans)

    def _translate_data(self, data: Sequence[Any]) -> ExportTraceServiceRequest:
        """The request for a batch (asked again on each retry)."""
        if not data or type(data[0]) is not tuple:
            return super()._translate_data(data)
        try:
            return ExportTraceServiceRequest.FromString(self.encoder.encode_request(data))
        except Unsupported:
            return encode_spans([to_readable(span) for span in data])

    def _count_data(self, data: Sequence[ReadableSpan | tuple]) -> int:
        return len(data)
