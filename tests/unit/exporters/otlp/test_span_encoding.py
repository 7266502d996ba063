"""The fast span encoding writes what the SDK's encoder writes for the same spans, byte
for byte, and the exporters use it (falling back to the SDK for what it does not
handle)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import StatusCode, TraceState

from exporters.otlp.exporter import OtlpExporter
from exporters.otlp.fastpath.sdk_path import http_client_available
from exporters.otlp.fastpath.span_encoding import SpanEncoder, Unsupported
from exporters.otlp.fastpath.span_grpc import FastGrpcSpanExporter
from exporters.otlp.fastpath.span_http import FastHttpSpanExporter
from telemetry import load_config
from telemetry.aggregation.aggregator import Aggregator
from telemetry.cli.simulator import ReferenceOrchestrator
from telemetry.config import TracingConfig
from telemetry.tracing.spans.record import Origin, SpanStub, to_readable
from telemetry.tracing.tracer import SignalTracer
from tests.support.http_sink import Collector

RESOURCE = Resource.create({"service.name": "yolo", "n": -5, "big": 2**62, "f": 1.5,
                            "b": False, "names": ("x", "y"), "ints": (1, 2)})


class Recorder(SpanProcessor):
    """Keeps the finished tuples the tracer hands to a processor that takes them."""

    def __init__(self) -> None:
        self.spans: list[tuple] = []

    def emit_record(self, span: tuple) -> None:
        self.spans.append(span)


def workflow_spans(aggregator: Aggregator, capture: bool,
                   resource: Resource = RESOURCE) -> list[tuple]:
    """Spans of reference workflows with errors, safety blocks, failures and refreshes,
    and a span under a remote parent with a trace state."""
    provider = TracerProvider(resource=resource, shutdown_on_exit=False,
                              span_limits=SpanLimits(max_events=1))
    recorder = Recorder()
    provider.add_span_processor(recorder)
    tracer = SignalTracer(provider.get_tracer("yolo-telemetry", "0.1.0"), aggregator,
                          TracingConfig(capture_content=capture))
    tracer.attach()
    try:
        ReferenceOrchestrator(seed=2, error_probability=0.5, safety_block_probability=0.5,
                              context_tokens_per_step=4000).run(workflows=6)
        aggregator.run_pending()
        with tracer._lock:  # the handlers as the aggregator runs them, with odd times
            handlers = tracer.follower_handlers
            handlers["yolo.agent_activated"](
                {"agent": "far", "traceparent":
                 "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                 "tracestate": "a=1,b=2"}, 1.0)
            handlers["yolo.safety_blocked"]({"agent": "late", "rule": "r"}, 0.0)
    finally:
        tracer.close()
        provider.shutdown()
    return recorder.spans


def odd_spans() -> list[tuple]:
    """Finished tuples the tracer rarely or never makes, but the format allows."""
    scope = InstrumentationScope("s", None, None, {"scope.attr": 1})
    origin = Origin(RESOURCE, scope, None)
    bare = Origin(RESOURCE, None, None)
    remote = SpanStub(1, 3, 0, None, remote=True)
    state = SpanStub(1, 4, 1, TraceState([("k", "v")]))
    schemas = Origin(Resource.create({"service.name": "schemed"}, "https://schema/resource"),
                     InstrumentationScope("s", "1", "https://schema/scope"), None)
    return [
        (bare, "no scope", 1, 2, None, None, 0, 0, {}, None, 0, None, 1),
        (schemas, "schema urls", 1, 8, None, None, 1, 2, {}, None, 0, None, 1),
        (origin, "", 1, 5, remote, None, 1, 2**63, {"u": "ünïcode", "e": "", "n": -1,
                                                    "z": 0, "t": True, "f": -0.25,
                                                    "l": ["a", "b"]},
         [("e", 5, {"x": 1.0}), ("", 0, {})], 3, "", 1),
        (origin, "stated", 1, 6, state, TraceState([("k", "v")]), 10, 0, {}, None, 0,
         "broken", 1),
        (origin, "empty state", 1, 7, state, TraceState(), 10, 11, {"big": 2**62}, None, 0,
         None, 1),
    ]


def sdk_bytes(spans: list[tuple]) -> bytes:
    return encode_spans([to_readable(span) for span in spans]).SerializePartialToString()


@pytest.fixture
def batches(aggregator: Aggregator) -> list[list[tuple]]:
    ours = workflow_spans(aggregator, capture=False) + workflow_spans(aggregator, capture=True)
    other = workflow_spans(aggregator, capture=False,
                           resource=Resource.create({"service.name": "other"}))
    mixed = ours[:20] + other[:10] + odd_spans() + ours[20:40] + other[10:20]
    return [ours, mixed, ours[:1], []]


def test_encoding_is_byte_identical_to_the_sdks(batches: list[list[tuple]]) -> None:
    encoder = SpanEncoder()
    ours = batches[0]
    names = {span[1] for span in ours}
    assert {"invoke_agent far", "state_load", "context_refresh analyst"} <= names
    assert any(span[11] is not None for span in ours)  # an ERROR status
    assert any(span[10] for span in ours)  # dropped events
    assert any("exception.stacktrace" in event[2] for span in ours for event in span[9] or ())
    assert any(span[4] is not None and span[4].remote and span[5] for span in ours)
    for batch in batches * 2:  # the second time from the caches
        encoded = encoder.encode_request(batch)
        assert encoded == sdk_bytes(batch)
        expected = encode_spans([to_readable(span) for span in batch])
        assert ExportTraceServiceRequest.FromString(encoded) == expected
    assert len(ExportTraceServiceRequest.FromString(
        encoder.encode_request(batches[1])).resource_spans) == 3


def test_the_caches_stay_bounded() -> None:
    encoder = SpanEncoder()
    origin = Origin(RESOURCE, InstrumentationScope("s", "1"), None)
    many = [(origin, f"name {n}", 1, 2, None, None, 1, 2, {"id": f"wf-{n}", "k": n}, None, 0,
             None, 1) for n in range(5000)]
    assert encoder.encode_request(many) == sdk_bytes(many)
    assert encoder._span_pairs.size <= 2048 and len(encoder._names) <= 2048


def test_odd_values_are_left_to_the_sdk() -> None:
    origin = Origin(RESOURCE, InstrumentationScope("s", "1"), None)
    odd = [(origin, "odd", 1, 2, None, None, 1, 2, {"b": b"bytes"}, None, 0, None, 1)]
    exporter = FastGrpcSpanExporter(endpoint="http://127.0.0.1:1", insecure=True)
    try:
        for spans in (odd,):
            with pytest.raises(Unsupported):
                SpanEncoder().encode_request(spans)
            assert exporter._translate_data(spans) == encode_spans(
                [to_readable(span) for span in spans])
    finally:
        exporter.shutdown()


def test_grpc_exporter_builds_the_sdks_request(batches: list[list[tuple]]) -> None:
    exporter = FastGrpcSpanExporter(endpoint="http://127.0.0.1:1", insecure=True)
    try:
        for batch in batches[:3]:
            assert exporter._translate_data(batch) == encode_spans(
                [to_readable(span) for span in batch])
        sdk_spans = [to_readable(span) for span in batches[2]]
        assert exporter._translate_data(sdk_spans) == encode_spans(sdk_spans)
    finally:
        exporter.shutdown()


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector("/v1/traces")
    yield server
    server.close()


def test_http_exporter_sends_the_fast_encoding(collector: Collector,
                                               batches: list[list[tuple]]) -> None:
    exporter = FastHttpSpanExporter(endpoint=collector.url, timeout=5)
    # the fast path is taken wherever the SDK has the HTTP client it needs (1.45.1 on);
    # on the floor (1.44) the SDK's export sends the same bytes
    assert exporter.fast is http_client_available()
    origin = Origin(RESOURCE, InstrumentationScope("s", "1"), None)
    odd = [(origin, "odd", 1, 2, None, None, 1, 2, {"b": b"bytes"}, None, 0, None, 1)]
    try:
        assert exporter.export_records(batches[0]) is SpanExportResult.SUCCESS
        sdk_spans = [to_readable(span) for span in batches[2]]
        assert exporter.export(sdk_spans) is SpanExportResult.SUCCESS  # SDK spans: SDK's encoder
        assert exporter.export_records(odd) is SpanExportResult.SUCCESS  # by the SDK's encoder
        collector.status = 400
        assert exporter.export_records(batches[2]) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert collector.bodies[0] == sdk_bytes(batches[0])
    assert ExportTraceServiceRequest.FromString(collector.bodies[1]) == encode_spans(sdk_spans)
    assert ExportTraceServiceRequest.FromString(collector.bodies[2]) == encode_spans(
        [to_readable(span) for span in odd])
    assert len(collector.bodies) == 4


def test_status_and_events_decode_as_the_sdk_would(batches: list[list[tuple]]) -> None:
    """A readable check of what the byte comparison covers: an ERROR span and its event."""
    failed = next(span for span in batches[0] if span[11] is not None and span[9])
    decoded = ExportTraceServiceRequest.FromString(SpanEncoder().encode_request([failed]))
    [span] = decoded.resource_spans[0].scope_spans[0].spans
    assert span.status.code == StatusCode.ERROR.value and span.status.message == failed[11]
    assert [event.name for event in span.events] == [event[0] for event in failed[9]]
    assert span.parent_span_id == failed[4].span_id.to_bytes(8, "big")


def test_otlp_exporter_makes_the_fast_exporters(aggregator: Aggregator) -> None:
    for protocol, cls in (("http/protobuf", FastHttpSpanExporter),
                          ("grpc", FastGrpcSpanExporter)):
        config = load_config({"exporters": {"otlp": {"enabled": True, "protocol": protocol}}},
                             environ={})
        exporter = OtlpExporter(config.exporters.otlp, aggregator, config)
        span_exporter = exporter.make_span_exporter()
        try:
            assert type(span_exporter) is cls
        finally:
            span_exporter.shutdown()


def test_every_varint_length_and_span_size_at_the_edges() -> None:
    """Small ints, float heads and span heads are written from tables: check them at
    their edges."""
    encoder = SpanEncoder()
    origin = Origin(RESOURCE, InstrumentationScope("s", "1"), None)
    parent = SpanStub(1, 9, 1)
    ints = [0, 0x7F, 0x80, 0x3FFF, 0x4000, 0x1FFFFF, 0x200000, 2**63 - 1]
    spans = [(origin, "ints", 1, 2 + n, parent, None, 1, 2, {"i": value, "s": "x"}, None, 0,
              None, 1) for n, value in enumerate(ints)]
    floats = [0.0, -0.0, 0.1, -2.5, 1e308, 5e-324, math.inf, -math.inf, math.nan]
    spans += [(origin, "floats", 1, 100 + n, parent, None, 1, 2, {"f": value, "cost": 1.5},
               None, 0, None, 1) for n, value in enumerate(floats)]
    # span bodies (70 bytes and the name) from under to over the 1 KiB the head table
    # covers, and far over it
    spans += [(origin, "n" * size, 1, 20 + size, parent, None, 1, 2, {}, None, 0, None, 1)
              for size in [*range(940, 970), 20_000]]
    for _ in range(2):
        assert encoder.encode_request(spans) == sdk_bytes(spans)


def test_the_compiled_writer_writes_what_the_list_and_join_path_writes(
        batches: list[list[tuple]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled, a batch of one origin is written into one buffer
    (``span_writer.pyx``); every shape of span, odd ones included, gives the bytes
    the pure-Python path and the SDK give. A pure-Python build has no such module."""
    from exporters.otlp.fastpath import span_encoding
    from telemetry.compiled import is_compiled

    if not is_compiled("exporters.otlp.fastpath.span_writer"):
        assert span_encoding._write_spans is None
        return
    from exporters.otlp.fastpath.span_writer import write_spans

    origin = batches[0][0][0]
    workflow = [span for span in batches[0] if span[0] is origin]  # one tracer's
    one_origin = [(origin, *span[1:]) for span in odd_spans()] + workflow
    assert len(workflow) > 100 and write_spans(SpanEncoder(), batches[1]) is None
    written = SpanEncoder()
    expected = [written.encode_request(batch) for batch in (one_origin, workflow) * 2]
    assert write_spans(SpanEncoder(), one_origin) is not None
    monkeypatch.setattr(span_encoding, "_write_spans", None)
    joined = SpanEncoder()
    assert expected == [joined.encode_request(batch) for batch in (one_origin, workflow) * 2]
    assert expected[0] == sdk_bytes(one_origin) and expected[1] == sdk_bytes(workflow)
