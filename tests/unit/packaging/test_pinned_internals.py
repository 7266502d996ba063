"""The private parts of other libraries the code relies on, checked one by one.

pyproject.toml bounds each of these libraries above (and below) by the versions this
file passes with. When a new release is allowed in, this file says which internal
moved before the code that uses it misbehaves. Tested with the lowest versions the
project declares (the lowest-versions CI job) and the newest ones allowed:

* blinker 1.8.0 and 1.9.0 (``telemetry/signals.py``):
  ``blinker.default_namespace`` (a dict, what ``blinker.signal`` reads and fills);
  subclassing ``NamedSignal`` and switching a ``NamedSignal``'s ``__class__`` in place;
  ``Signal._clear_state``; ``Signal.receivers`` (receiver id -> the receiver itself
  when strong, a ``weakref.ref`` when weak); ``receivers_for(ANY)``; ``is_muted``;
  the signatures of ``connect``, ``disconnect`` and ``send`` (``_async_wrapper``).
* opentelemetry-api, -sdk, -exporter-otlp 1.44.0 and 1.45.2 (1.45.1 too), with
  opentelemetry-exporter-http-transport 0.66b1 and 0.66b2 (what each internal is
  for, and what falls back when it changes: exporters/otlp/fastpath/README.md):

  - ``opentelemetry.exporter.http.transport._base``: ``BaseHTTPTransport`` (abstract
    ``request(method, url, *, headers, timeout, data)``, ``close``,
    ``is_connection_error``) and ``BaseHTTPResult`` (a frozen, slotted dataclass with
    ``status_code``, ``reason``, ``error``; abstract ``content`` and ``headers``)
    (``exporters/otlp/fastpath/span_transport.py``);
  - the OTLP/HTTP exporters' ``_transport`` keyword, ``_client.export(bytes)`` and its
    result (``success``, ``status_code``, ``error``), ``_max_request_size``,
    ``_shutdown``, the metric exporter's ``_max_export_batch_size`` and
    ``_metrics.export_operation(n)`` (``error``, ``error_attrs``)
    (``exporters/otlp/fastpath/span_http.py``, ``metric_http.py``);
  - the OTLP/gRPC exporters' ``_export``, which calls ``_count_data`` and
    ``_translate_data`` and sends through ``_client.Export``
    (``exporters/otlp/fastpath/span_grpc.py``, ``metric_grpc.py``), and their
    ``_stub``, ``_channel`` and ``_client``, which ``exporters/otlp/partial.py``
    rewires to read partial success;
  - ``ReadableSpan``'s parameter order, ``BoundedList(None)`` with a settable
    ``dropped``, ``InstrumentationInfo`` (``telemetry/tracing/spans/record.py``);
  - an SDK tracer's ``_instrumentation_scope``, ``_span_limits``, ``span_processor``
    and its ``_span_processors``; ``StaticSampler._decision``;
    ``TraceIdRatioBased.bound`` and ``TRACE_ID_LIMIT`` (sample when the trace id's low
    64 bits are below the bound); ``ParentBased``'s ``_root``,
    ``_remote_parent_sampled``, ``_remote_parent_not_sampled``,
    ``_local_parent_sampled``, ``_local_parent_not_sampled``;
    ``TraceFlags.RANDOM_TRACE_ID`` and ``IdGenerator.is_trace_id_random``
    (``telemetry/tracing/spans/builder.py``);
  - ``opentelemetry.context._RUNTIME_CONTEXT._current_context`` (the ``ContextVar``
    the context lives in) and ``opentelemetry.trace.propagation._SPAN_KEY``, read and
    set directly by ``telemetry/tracing/live.py`` (the public functions otherwise);
    ``opentelemetry.context._SUPPRESS_INSTRUMENTATION_KEY``, set around exports by
    ``exporters/otlp/batch.py`` and ``exporter.py`` as the SDK's processors do.
* pyinstrument 5.0.0 and 5.1.3 (``telemetry/profiling/render.py``): ``Session``
  built from frame records (its keyword arguments, ``current_sys_prefixes``) and the
  frame identifier format ``function\\x00file\\x00line`` with ``\\x01c<class>``.
"""

from __future__ import annotations

import gc
import inspect
import sys
import weakref
from typing import Any

import blinker
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationInfo, InstrumentationScope
from opentelemetry.trace import TraceFlags
from pyinstrument.session import Session

from exporters.otlp.fastpath.sdk_path import fallback_reason, http_client_available
from exporters.otlp.fastpath.span_http import FastHttpSpanExporter

# -- blinker -------------------------------------------------------------------------------


class ProbeSignal(blinker.NamedSignal):
    """A subclass like telemetry's, recording what blinker's own methods do."""

    cleared = 0

    def _clear_state(self) -> None:
        super()._clear_state()
        self.cleared += 1


def _receiver(sender: Any, **fields: Any) -> str:
    return "got"


def test_blinker_signal_reads_and_fills_default_namespace():
    assert isinstance(blinker.default_namespace, dict)
    name = "yolo.test.pinned_internals.namespace"
    mine = blinker.default_namespace.setdefault(name, ProbeSignal(name))
    try:
        # telemetry puts its subclass there first; blinker.signal must hand out that one
        assert blinker.signal(name) is mine
        assert blinker.default_namespace.get(name) is mine
    finally:
        del blinker.default_namespace[name]


def test_a_named_signal_can_become_the_subclass_in_place():
    signal = blinker.NamedSignal("yolo.test.pinned_internals.upgrade")
    signal.connect(_receiver, weak=False)
    signal.__class__ = ProbeSignal  # what telemetry does to a signal made before it
    assert isinstance(signal, ProbeSignal)
    assert signal.send("sender") == [(_receiver, "got")]


def test_receivers_hold_strong_receivers_themselves_and_weak_ones_as_weakrefs():
    signal = ProbeSignal("yolo.test.pinned_internals.receivers")
    signal.connect(_receiver, weak=False)
    assert list(signal.receivers.values()) == [_receiver]
    assert list(signal.receivers_for(blinker.ANY)) == [_receiver]

    weak_signal = ProbeSignal("yolo.test.pinned_internals.weak")

    def passing(sender: Any, **fields: Any) -> None:
        return None

    weak_signal.connect(passing)  # weak by default
    (stored,) = weak_signal.receivers.values()
    assert isinstance(stored, weakref.ref)
    del passing, stored
    gc.collect()
    assert not weak_signal.receivers  # blinker drops a dead weak receiver by itself


def test_clear_state_disconnects_every_receiver():
    signal = ProbeSignal("yolo.test.pinned_internals.clear")
    signal.connect(_receiver, weak=False)
    signal._clear_state()
    assert signal.cleared == 1
    assert not signal.receivers
    assert signal.send("sender") == []


def test_muting_sets_is_muted():
    signal = ProbeSignal("yolo.test.pinned_internals.muted")
    signal.connect(_receiver, weak=False)
    assert signal.is_muted is False
    with signal.muted():
        assert signal.is_muted is True
        assert signal.send("sender") == []
    assert signal.is_muted is False


def test_connect_disconnect_and_send_take_the_arguments_telemetry_passes():
    connect = inspect.signature(blinker.NamedSignal.connect).parameters
    assert list(connect) == ["self", "receiver", "sender", "weak"]
    assert connect["sender"].default is blinker.ANY and connect["weak"].default is True
    disconnect = inspect.signature(blinker.NamedSignal.disconnect).parameters
    assert list(disconnect) == ["self", "receiver", "sender"]
    send = inspect.signature(blinker.NamedSignal.send).parameters
    assert send["sender"].kind is inspect.Parameter.POSITIONAL_ONLY
    assert send["_async_wrapper"].kind is inspect.Parameter.KEYWORD_ONLY
    assert send["_async_wrapper"].default is None


# -- OpenTelemetry: the pluggable HTTP transport --------------------------------------------


@pytest.mark.skipif(http_client_available(),
                    reason="SDK 1.45.1 and later: test_pinned_http_client.py")
@pytest.mark.parametrize("exporter_class, path", [(HttpSpanExporter, "/v1/traces"),
                                                  (HttpMetricExporter, "/v1/metrics")])
def test_http_exporters_before_the_client_send_through_export(exporter_class, path):
    """SDK 1.44 (the floor): no ``_client``, so the fast path falls back to the SDK's
    ``export``; exporters/otlp/partial.py wraps ``_export(bytes, timeout)``, which
    returns the ``requests`` response, to read partial success."""
    exporter = exporter_class(endpoint=f"http://127.0.0.1:9{path}", timeout=3)
    try:
        assert not hasattr(exporter, "_client")
        assert list(inspect.signature(exporter._export).parameters)[:2] == [
            "serialized_data", "timeout_sec"]
        assert exporter._timeout == 3 and exporter._shutdown is False
        assert fallback_reason(FastHttpSpanExporter(endpoint=f"http://127.0.0.1:9{path}"))
    finally:
        exporter.shutdown()


class FakeStub:
    """Stands in for the gRPC service stub: records the requests."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def Export(self, request: Any, metadata: Any = None, timeout: float | None = None) -> None:
        self.requests.append(request)


@pytest.mark.parametrize("exporter_class, request_class, success", [
    (GrpcSpanExporter, ExportTraceServiceRequest, SpanExportResult.SUCCESS),
    (GrpcMetricExporter, ExportMetricsServiceRequest, MetricExportResult.SUCCESS),
])
def test_grpc_export_counts_and_translates_through_the_overridable_hooks(
        exporter_class, request_class, success):
    seen: list[tuple[str, Any]] = []
    request = request_class()

    class Probe(exporter_class):  # type: ignore[misc, valid-type]
        def _translate_data(self, data: Any) -> Any:
            seen.append(("translate", data))
            return request

        def _count_data(self, data: Any) -> int:
            seen.append(("count", data))
            return 1

    exporter = Probe(endpoint="127.0.0.1:9", insecure=True)
    try:
        stub = FakeStub()
        exporter._client = stub
        batch = object()  # the fast path hands over what the SDK never sees
        assert exporter._export(batch) == success
        assert ("count", batch) in seen and ("translate", batch) in seen
        assert stub.requests == [request]
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("exporter_class", [GrpcSpanExporter, GrpcMetricExporter])
def test_grpc_exporters_keep_the_stub_channel_and_client_partial_success_rewires(
        exporter_class):
    """exporters/otlp/partial.py wraps ``_stub`` and remakes ``_client`` on ``_channel``
    to read each export's answer; without them partial success goes unread."""
    from exporters.otlp.partial import watch_grpc_answers

    exporter = exporter_class(endpoint="127.0.0.1:9", insecure=True)
    try:
        assert callable(exporter._stub)
        assert exporter._channel is not None and exporter._client is not None
        assert watch_grpc_answers(exporter, lambda response: None) is True
        assert hasattr(exporter._client, "Export")
    finally:
        exporter.shutdown()


# -- OpenTelemetry: SDK spans, tracers and samplers -----------------------------------------


def test_readable_span_takes_its_parameters_in_the_order_to_readable_passes_them():
    parameters = list(inspect.signature(ReadableSpan.__init__).parameters)
    assert parameters[:14] == [
        "self", "name", "context", "parent", "resource", "attributes", "events", "links",
        "kind", "instrumentation_info", "status", "start_time", "end_time",
        "instrumentation_scope"]


@pytest.mark.filterwarnings("ignore:You should use InstrumentationScope:DeprecationWarning")
def test_to_readable_carries_events_and_their_dropped_count_through_bounded_list():
    # to_readable fills a BoundedList(None) and sets its `dropped`, which is what
    # ReadableSpan.dropped_events reads.
    from opentelemetry.sdk.resources import Resource

    from telemetry.tracing.spans.record import Origin, to_readable

    scope = InstrumentationScope("yolo", "1")
    origin = Origin(Resource.create({"service.name": "probe"}), scope,
                    InstrumentationInfo("yolo", "1"))
    span = to_readable((origin, "decision scope", 1, 2, None, None, 10, 20, {"agent": "pm"},
                        [("error", 15, {"error.type": "Boom"})], 3, "failed",
                        int(TraceFlags.SAMPLED)))
    assert span.name == "decision scope"
    assert (span.start_time, span.end_time) == (10, 20)
    assert [(event.name, event.timestamp) for event in span.events] == [("error", 15)]
    assert span.dropped_events == 3
    assert span.instrumentation_scope == scope
    assert span.resource.attributes["service.name"] == "probe"
    assert span.status.description == "failed"


def test_an_sdk_tracer_exposes_what_the_span_builder_reads():
    processor = SpanProcessor()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(processor)
    try:
        tracer = provider.get_tracer("yolo-probe", "1.0")
        assert tracer._instrumentation_scope == InstrumentationScope("yolo-probe", "1.0")
        assert isinstance(tracer._span_limits, SpanLimits)
        assert tracer.sampler is ALWAYS_ON
        assert isinstance(tracer.id_generator, RandomIdGenerator)
        assert tracer.instrumentation_info.name == "yolo-probe"
        assert tuple(tracer.span_processor._span_processors) == (processor,)
    finally:
        provider.shutdown()


def test_samplers_keep_their_decision_rules_where_the_builder_reads_them():
    assert type(ALWAYS_ON) is StaticSampler and type(ALWAYS_OFF) is StaticSampler
    assert ALWAYS_ON._decision is Decision.RECORD_AND_SAMPLE
    assert ALWAYS_OFF._decision is Decision.DROP

    ratio = TraceIdRatioBased(0.25)
    assert TraceIdRatioBased.TRACE_ID_LIMIT == 2**64 - 1
    assert ratio.bound == round(0.25 * (TraceIdRatioBased.TRACE_ID_LIMIT + 1))
    high_bits = 0xABCD << 64  # only the low 64 bits decide
    below = ratio.should_sample(None, high_bits | (ratio.bound - 1), "span")
    at = ratio.should_sample(None, high_bits | ratio.bound, "span")
    assert below.decision is Decision.RECORD_AND_SAMPLE
    assert at.decision is Decision.DROP

    parts = [TraceIdRatioBased(rate) for rate in (0.1, 0.2, 0.3, 0.4, 0.5)]
    parent_based = ParentBased(*parts)
    assert [getattr(parent_based, name) for name in (
        "_root", "_remote_parent_sampled", "_remote_parent_not_sampled",
        "_local_parent_sampled", "_local_parent_not_sampled")] == parts


def test_trace_flags_and_ids_say_whether_the_trace_id_is_random():
    assert int(TraceFlags.RANDOM_TRACE_ID) == 0x02  # W3C Trace Context level 2
    assert RandomIdGenerator().is_trace_id_random() is True


def test_the_live_context_reads_and_sets_the_context_variable_itself():
    """telemetry/tracing/live.py sets the current span through the variable and key
    OpenTelemetry's own functions use; if they move it falls back to those functions,
    a third slower."""
    from opentelemetry import context, trace

    from telemetry.tracing import live
    from telemetry.tracing.spans.record import SpanStub

    assert live._VAR is context._RUNTIME_CONTEXT._current_context
    assert live._SPAN_KEY == trace.propagation._SPAN_KEY
    token = context.attach(context.Context())
    try:
        entered = live.enter(SpanStub(1, 2, 1))
        assert trace.get_current_span() is entered
        assert trace.get_current_span().get_span_context().span_id == 2
        live.leave(entered)
        assert not trace.get_current_span().get_span_context().is_valid
    finally:
        context.detach(token)


def test_exports_suppress_instrumentation_with_the_sdks_key():
    from opentelemetry import context
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    from exporters.otlp.batch import QUIET

    assert QUIET.get(context._SUPPRESS_INSTRUMENTATION_KEY) is True
    token = context.attach(QUIET)
    try:
        assert not is_instrumentation_enabled()
    finally:
        context.detach(token)


# -- pyinstrument ----------------------------------------------------------------------------


def test_pyinstrument_session_reads_the_frame_records_render_builds():
    parameters = set(inspect.signature(Session.__init__).parameters) - {"self"}
    assert parameters == {"frame_records", "start_time", "duration", "min_interval",
                          "max_interval", "sample_count", "start_call_stack",
                          "target_description", "cpu_time", "sys_path", "sys_prefixes"}
    thread = "MainThread\x00<thread>\x001"
    frame = "run_agent\x00/srv/orchestrator.py\x0042\x01cReferenceOrchestrator"
    session = Session(
        frame_records=[([thread, frame], 0.25)], start_time=0.0, duration=0.25,
        min_interval=0.001, max_interval=0.001, sample_count=1, start_call_stack=[thread],
        target_description="probe", cpu_time=0.1, sys_path=list(sys.path),
        sys_prefixes=Session.current_sys_prefixes())
    (child,) = session.root_frame().children
    assert (child.function, child.file_path, child.line_no, child.class_name) == (
        "run_agent", "/srv/orchestrator.py", 42, "ReferenceOrchestrator")
    assert child.time == pytest.approx(0.25)
