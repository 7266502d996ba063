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

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from exporters.otlp.fastpath.span_encoding import SpanEncoder, Unsupported, sdk_request


class FastGrpcSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (gRPC) whose request for finished tuples is parsed from
    :class:`SpanEncoder`'s bytes."""

    #: Its stub can be wrapped to read partial success (:mod:`exporters.otlp.partial`).
    grpc = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = SpanEncoder()

    def span_writer(self, origin: Any) -> Any:
        """What writes a span of ``origin`` as it ends (see
        :meth:`SpanEncoder.span_writer`)."""
        return self.encoder.span_writer(origin)

    def export_records(self, spans: Sequence[Any]) -> SpanExportResult:
        """Send finished tuples (:mod:`telemetry.tracing.spans.record`) and spans
        written as they ended (bytes)."""
        return self._export(spans)

    def _translate_data(self, data: Sequence[Any]) -> ExportTraceServiceRequest:
        """The request for a batch (asked again on each retry)."""
        if not data or type(data[0]) not in (tuple, bytes):
            return super()._translate_data(data)
        try:
            return ExportTraceServiceRequest.FromString(self.encoder.encode_request(data))
        except Unsupported:
            return ExportTraceServiceRequest.FromString(sdk_request(self.encoder, data))

    def _count_data(self, data: Sequence[ReadableSpan | tuple]) -> int:
        return len(data)
