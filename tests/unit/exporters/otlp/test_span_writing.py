"""Spans written as they end (compiled builds): the tracer queues each span's protobuf
field instead of its tuple, and the export thread only puts them into a request.

The requests must be byte for byte those the batch encoding (and so the SDK) makes;
a span the writer does not handle is written by the SDK's encoder; a batch that mixes
written spans with tuples or SDK spans loses none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporters.otlp.batch import SpanBatchProcessor
from exporters.otlp.fastpath import span_encoding
from exporters.otlp.fastpath.span_encoding import SpanEncoder, sdk_request
from exporters.otlp.fastpath.span_grpc import FastGrpcSpanExporter
from exporters.otlp.traces import GuardedSpanExporter
from telemetry.aggregation.aggregator import Aggregator
from telemetry.cli.simulator import ReferenceOrchestrator
from telemetry.compiled import is_compiled
from telemetry.config import BatchConfig, TracingConfig
from telemetry.tracing.spans.record import Origin
from telemetry.tracing.tracer import SignalTracer
from tests.unit.exporters.otlp.test_span_encoding import sdk_bytes, workflow_spans

COMPILED = is_compiled("exporters.otlp.fastpath.span_writer")
RESOURCE = Resource.create({"service.name": "writing"})
ORIGIN = Origin(RESOURCE, InstrumentationScope("s", "1"), None)
#: A span the writer leaves to the SDK: a value of a type OTLP has no field for here.
ODD = (ORIGIN, "odd", 1, 2, None, None, 1, 2, {"b": b"bytes", "k": "v"}, None, 0, None, 1)


def spans_of(request: bytes) -> list[Any]:
    """The spans of a serialized request, in a stable order."""
    decoded = ExportTraceServiceRequest.FromString(request)
    spans = [span for resource_spans in decoded.resource_spans
             for scope_spans in resource_spans.scope_spans for span in scope_spans.spans]
    return sorted(spans, key=lambda span: (span.trace_id, span.span_id))


def one_origin(aggregator: Aggregator) -> list[tuple]:
    spans = workflow_spans(aggregator, capture=True)
    return [span for span in spans if span[0] is spans[0][0]]


def test_a_compiled_build_writes_spans_as_they_end_and_a_pure_one_does_not() -> None:
    """Compiled, the encoder finds the writer (an import cycle would hide it)."""
    writer = SpanEncoder().span_writer(ORIGIN)
    assert (writer is not None) == COMPILED
    assert (span_encoding._SpanWriter is not None) == COMPILED


@pytest.mark.skipif(not COMPILED, reason="compiled builds only write spans as they end")
def test_written_spans_make_the_request_the_batch_makes(aggregator: Aggregator) -> None:
    spans = one_origin(aggregator)
    assert len(spans) > 100
    exporter_side = SpanEncoder()
    write = exporter_side.span_writer(spans[0][0])
    written = [write(span) for span in spans]
    assert all(type(item) is bytes for item in written)
    assert exporter_side.encode_request(written) == sdk_bytes(spans)
    # written and unwritten spans of the origin in one batch: every span, once
    mixed = written[: len(spans) // 2] + spans[len(spans) // 2:]
    assert spans_of(exporter_side.encode_request(mixed)) == spans_of(sdk_bytes(spans))


@pytest.mark.skipif(not COMPILED, reason="compiled builds only write spans as they end")
def test_only_one_origin_is_written_per_exporter() -> None:
    """A batch's written spans say nothing of their origin: the exporter's encoder
    writes those of the first origin that asks, and leaves others their tuples."""
    encoder = SpanEncoder()
    assert encoder.span_writer(ORIGIN) is not None
    assert encoder.span_writer(ORIGIN) is not None  # the same origin again: yes
    assert encoder.span_writer(Origin(RESOURCE, InstrumentationScope("t"), None)) is None


@pytest.mark.skipif(not COMPILED, reason="compiled builds only write spans as they end")
def test_a_span_the_writer_does_not_handle_is_written_by_the_sdks_encoder() -> None:
    encoder = SpanEncoder()
    written = encoder.span_writer(ORIGIN)(ODD)
    assert encoder.encode_request([written]) == sdk_bytes([ODD])


@pytest.mark.skipif(not COMPILED, reason="compiled builds only write spans as they end")
def test_written_spans_and_tuples_the_encoder_refuses_go_out_together(
        aggregator: Aggregator) -> None:
    """A tuple the batch encoding refuses sends its batch through the SDK's encoder;
    the batch's written spans go in the same request (HTTP: the bytes; gRPC: the
    parsed request)."""
    spans = one_origin(aggregator)[:5]
    odd = (spans[0][0], *ODD[1:])
    encoder = SpanEncoder()
    write = encoder.span_writer(spans[0][0])
    batch = [*map(write, spans), odd]
    expected = spans_of(sdk_bytes([*spans, odd]))
    assert spans_of(sdk_request(encoder, batch)) == expected
    exporter = FastGrpcSpanExporter(endpoint="http://127.0.0.1:1", insecure=True)
    try:
        assert exporter.span_writer(spans[0][0]) is not None
        exporter.encoder = encoder
        request = exporter._translate_data(batch).SerializeToString()
        assert spans_of(request) == expected
    finally:
        exporter.shutdown()


@pytest.mark.skipif(not COMPILED, reason="compiled builds only write spans as they end")
def test_a_shut_http_exporter_refuses_written_spans_without_an_error() -> None:
    from exporters.otlp.fastpath.span_http import FastHttpSpanExporter

    exporter = FastHttpSpanExporter(endpoint="http://127.0.0.1:1/v1/traces")
    write = exporter.span_writer(ORIGIN)
    written = write((*ODD[:8], {"k": "v"}, *ODD[9:]))
    exporter.shutdown()
    assert exporter.export_records([written]) is SpanExportResult.FAILURE


class Writing(SpanProcessor):
    """A processor that takes finished spans and has its exporter's writer."""

    def __init__(self) -> None:
        self.encoder = SpanEncoder()
        self.items: list[Any] = []

    def emit_record(self, span: Any) -> None:
        self.items.append(span)

    def span_writer(self, origin: Any) -> Any:
        return self.encoder.span_writer(origin)


@pytest.mark.skipif(not COMPILED, reason="compiled builds only write spans as they end")
def test_the_tracer_queues_spans_written_with_the_limits_applied(
        aggregator: Aggregator) -> None:
    """The tracer hands the processor each span written, after the attribute length
    limit cut it (the writer sees what the exporter would)."""
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False,
                              span_limits=SpanLimits(max_span_attribute_length=3))
    processor = Writing()
    provider.add_span_processor(processor)
    tracer = SignalTracer(provider.get_tracer("yolo-telemetry", "0.1.0"), aggregator,
                          TracingConfig(), max_text_length=64)
    tracer.attach()
    try:
        ReferenceOrchestrator(seed=3).run(workflows=1)
        aggregator.run_pending()
    finally:
        tracer.close()
    assert processor.items and all(type(item) is bytes for item in processor.items)
    spans = spans_of(processor.encoder.encode_request(processor.items))
    assert any(span.name.startswith("invoke_workflow") for span in spans)
    values = [a.value.string_value for span in spans for a in span.attributes
              if a.value.HasField("string_value")]
    assert values and max(map(len, values)) <= 3


class Inner(SpanExporter):
    """An inner exporter with a writer, keeping what it is asked to send."""

    def __init__(self) -> None:
        self.encoder = SpanEncoder()
        self.records: list[list[Any]] = []
        self.sdk: list[list[ReadableSpan]] = []

    def span_writer(self, origin: Any) -> Any:
        return self.encoder.span_writer(origin)

    def export_records(self, spans: Sequence[Any]) -> SpanExportResult:
        self.records.append(list(spans))
        return SpanExportResult.SUCCESS

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.sdk.append(list(spans))
        return SpanExportResult.SUCCESS


@pytest.mark.skipif(not COMPILED, reason="compiled builds only write spans as they end")
def test_the_configured_genai_provider_is_written_into_the_span(
        aggregator: Aggregator) -> None:
    from exporters.otlp.traces import OPERATION_NAME, PROVIDER_NAME
    from telemetry.workers import ExporterStatus

    guarded = GuardedSpanExporter(Inner(), ExporterStatus("otlp"), aggregator)
    guarded.genai_provider = "openai"
    write = guarded.span_writer(ORIGIN)
    chat = (ORIGIN, "chat m", 1, 2, None, None, 1, 2, {OPERATION_NAME: "chat"}, None, 0,
            None, 1)
    plain = (*chat[:8], {"k": "v"}, *chat[9:])
    spans = spans_of(guarded.inner.encoder.encode_request([write(chat), write(plain)]))
    attributes = [{a.key: a.value.string_value for a in span.attributes} for span in spans]
    assert attributes == [{OPERATION_NAME: "chat", PROVIDER_NAME: "openai"}, {"k": "v"}]
    assert chat[8] == {OPERATION_NAME: "chat"}  # the tracer's dict is left as it was


def test_sdk_spans_of_a_batch_go_to_export_and_ours_to_export_records(
        aggregator: Aggregator) -> None:
    """SDK spans ended through the provider share the queue with the tracer's spans,
    written or not: each kind goes where it is understood, none is lost."""
    inner = Inner()
    processor = SpanBatchProcessor(inner, BatchConfig(schedule_delay_ms=3_600_000), aggregator)
    try:
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)
        provider.get_tracer("sdk").start_span("sdk").end()
        tuple_span = (*ODD[:8], {"k": "v"}, *ODD[9:])
        processor.emit_record(tuple_span)
        if COMPILED:
            processor.emit_record(processor.span_writer(ORIGIN)(tuple_span))
        assert processor.force_flush(10_000)
    finally:
        processor.shutdown()
    assert [[span.name for span in batch] for batch in inner.sdk] == [["sdk"]]
    ours = [item for batch in inner.records for item in batch]
    assert ours[0] is tuple_span and [type(item) for item in ours[1:]] == [bytes] * COMPILED
