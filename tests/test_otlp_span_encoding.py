"""The fast span encoding writes what the SDK's encoder writes, byte for byte, and the
exporters use it (falling back to the SDK for what it does not handle)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

from exporters.otlp import OtlpExporter
from exporters.otlp_span_encoding import SpanEncoder, Unsupported
from exporters.otlp_span_grpc import FastGrpcSpanExporter
from exporters.otlp_span_http import FastHttpSpanExporter
from telemetry import load_config
from telemetry.aggregator import Aggregator
from telemetry.config import TracingConfig
from telemetry.simulator import ReferenceOrchestrator
from telemetry.tracing import SignalTracer

RESOURCE = Resource.create({"service.name": "yolo", "n": -5, "big": 2**62, "f": 1.5,
                            "b": False, "names": ("x", "y"), "ints": (1, 2)})


def workflow_spans(aggregator: Aggregator, capture: bool) -> list[ReadableSpan]:
    """Spans of reference workflows with errors, safety blocks, failures and refreshes."""
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = SignalTracer(provider.get_tracer("yolo-telemetry", "0.1.0"), aggregator,
                          TracingConfig(capture_content=capture))
    tracer.attach()
    try:
        ReferenceOrchestrator(seed=2, error_probability=0.5, safety_block_probability=0.5,
                              context_tokens_per_step=4000).run(workflows=6)
        tracer._handlers["yolo.agent_activated"](
            {"agent": "far", "traceparent":
             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
             "tracestate": "a=1,b=2"}, 1.0)
    finally:
        tracer.close()
        provider.shutdown()
    return list(memory.get_finished_spans())


def sdk_spans() -> list[ReadableSpan]:
    """Spans made by the SDK itself: bounded attributes, dropped counts, many types."""
    provider = TracerProvider(resource=Resource.create({"service.name": "other"}),
                              span_limits=SpanLimits(max_span_attributes=6, max_events=1),
                              shutdown_on_exit=False)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("sdk-scope")
    with tracer.start_as_current_span("parent", kind=trace.SpanKind.SERVER) as parent:
        parent.set_attributes({"s": "v", "neg": -1, "zero": 0, "f": -0.25, "t": True,
                               "list": ["a", "b"], "extra": 1, "dropped": 2})
        parent.add_event("first", {"k": 1})
        parent.add_event("second", {"k": "two"})
        parent.set_status(Status(StatusCode.ERROR, "broken"))
        child = tracer.start_span("", kind=trace.SpanKind.CLIENT)
        child.set_status(Status(StatusCode.OK))
        child.end()
    provider.shutdown()
    return list(memory.get_finished_spans())


def odd_spans() -> list[ReadableSpan]:
    context = SpanContext(1, 2, False, TraceFlags(1))
    return [ReadableSpan("no scope", context, None, RESOURCE, {}, (), (),
                         start_time=0, end_time=0, instrumentation_scope=None),
            ReadableSpan("scoped", context, SpanContext(1, 3, True, TraceFlags(0)), RESOURCE,
                         {"u": "ünïcode", "e": ""},
                         [Event("e", {"x": 1.0}, 5)], (), kind=trace.SpanKind.PRODUCER,
                         start_time=1, end_time=2**63,
                         instrumentation_scope=InstrumentationScope("s", None, None,
                                                                    {"scope.attr": 1}))]


@pytest.fixture
def batches(aggregator: Aggregator) -> list[list[ReadableSpan]]:
    ours = workflow_spans(aggregator, capture=False) + workflow_spans(aggregator, capture=True)
    mixed = ours[:20] + sdk_spans() + odd_spans() + ours[20:40]
    return [ours, mixed, ours[:1], []]


def test_encoding_is_byte_identical_to_the_sdks(batches: list[list[ReadableSpan]]) -> None:
    encoder = SpanEncoder()
    names = {span.name for span in batches[0]}
    assert {"invoke_agent far", "state_load", "context_refresh analyst"} <= names
    assert any(span.status.status_code is StatusCode.ERROR for span in batches[0])
    assert any("exception.stacktrace" in event.attributes
               for span in batches[0] for event in span.events)
    for batch in batches * 2:  # the second time from the caches
        assert encoder.encode_request(batch) == encode_spans(batch).SerializePartialToString()


def test_the_caches_stay_bounded(batches: list[list[ReadableSpan]]) -> None:
    encoder = SpanEncoder()
    context = SpanContext(1, 2, False, TraceFlags(1))
    many = [ReadableSpan(f"name {n}", context, None, RESOURCE, {"id": f"wf-{n}"}, (), (),
                         start_time=1, end_time=2) for n in range(5000)]
    assert encoder.encode_request(many) == encode_spans(many).SerializePartialToString()
    assert len(encoder._pairs) <= 2048 and len(encoder._names) <= 2048


def test_links_and_odd_values_are_left_to_the_sdk(batches: list[list[ReadableSpan]]) -> None:
    context = SpanContext(1, 2, False, TraceFlags(1))
    linked = ReadableSpan("linked", context, None, RESOURCE, {}, (), [Link(context)],
                          start_time=1, end_time=2)
    odd = ReadableSpan("odd", context, None, RESOURCE, {"b": b"bytes"}, (), (),
                       start_time=1, end_time=2)
    exporter = FastGrpcSpanExporter(endpoint="http://127.0.0.1:1", insecure=True)
    try:
        for span in (linked, odd):
            with pytest.raises(Unsupported):
                SpanEncoder().encode_request([span])
            assert exporter._translate_data([span]) == encode_spans([span])
    finally:
        exporter.shutdown()


def test_grpc_exporter_builds_the_sdks_request(batches: list[list[ReadableSpan]]) -> None:
    exporter = FastGrpcSpanExporter(endpoint="http://127.0.0.1:1", insecure=True)
    try:
        for batch in batches:
            assert exporter._translate_data(batch) == encode_spans(batch)
    finally:
        exporter.shutdown()


class Collector:
    """A local HTTP endpoint keeping every request body; answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.status = 200
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                collector.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(collector.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    yield server
    server.close()


def test_http_exporter_sends_the_fast_encoding(collector: Collector,
                                               batches: list[list[ReadableSpan]]) -> None:
    exporter = FastHttpSpanExporter(endpoint=collector.url, timeout=5)
    assert exporter.fast  # with the installed SDK the fast path is taken
    context = SpanContext(1, 2, False, TraceFlags(1))
    linked = ReadableSpan("linked", context, None, RESOURCE, {}, (), [Link(context)],
                          start_time=1, end_time=2)
    try:
        assert exporter.export(batches[0]) is SpanExportResult.SUCCESS
        assert exporter.export([linked]) is SpanExportResult.SUCCESS  # by the SDK's encoder
        collector.status = 400
        assert exporter.export(batches[2]) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert collector.bodies[0] == encode_spans(batches[0]).SerializePartialToString()
    assert ExportTraceServiceRequest.FromString(collector.bodies[1]) == encode_spans([linked])
    assert len(collector.bodies) == 3


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
