"""The OTLP/gRPC span exporter with the tracer's fast encoding.

:class:`FastGrpcSpanExporter` is the SDK's gRPC ``OTLPSpanExporter`` whose request is
built from the bytes :class:`~exporters.otlp_span_encoding.SpanEncoder` writes
(parsing them is done in C by protobuf, and is cheap) instead of by the SDK's
encoder; a batch the encoder does not handle goes through the SDK's encoder.

Imports gRPC: import it only when tracing over gRPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan

from .otlp_span_encoding import SpanEncoder, Unsupported


class FastGrpcSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (gRPC) whose request is parsed from :class:`SpanEncoder`'s
    bytes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = SpanEncoder()

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        try:
            return ExportTraceServiceRequest.FromString(self.encoder.encode_request(data))
        except Unsupported:
            return super()._translate_data(data)
