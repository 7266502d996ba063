"""The tracer's spans match what the SDK's own spans would be: ids, flags, sampling,
limits, exception events, resource and scope."""

from __future__ import annotations

import gc
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, Sampler, SamplingResult
from opentelemetry.trace import TraceState

from exporters.otlp.traces import make_sampler
from telemetry.aggregation.aggregator import Aggregator
from telemetry.cli.simulator import ReferenceOrchestrator
from telemetry.config import TracingConfig
from telemetry.tracing.spans.builder import MAX_VALUE_LENGTH, SpanBuilder
from telemetry.tracing.spans.record import SpanRecord, SpanStub
from telemetry.tracing.tracer import SignalTracer, remote_parent
from tests.conftest import send

#: A whole second an hour ago: within the accepted timestamp window of now.
T0 = float(int(time.time()) - 3600)
UNSAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def pipeline(aggregator: Aggregator, *, limits: SpanLimits | None = None,
             ids: IdGenerator | None = None,
             **tracing: object) -> tuple[TracerProvider, InMemorySpanExporter, SignalTracer]:
    config = TracingConfig(**tracing)
    provider = TracerProvider(sampler=make_sampler(config), span_limits=limits,
                              id_generator=ids, resource=Resource.create({"service.name": "t"}),
                              shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = SignalTracer(provider.get_tracer("scope-name", "1.2"), aggregator, config)
    tracer.attach()
    return provider, exporter, tracer


@pytest.fixture
def made(aggregator: Aggregator):
    built: list[tuple[TracerProvider, InMemorySpanExporter, SignalTracer]] = []

    def make(**kwargs: object) -> tuple[TracerProvider, InMemorySpanExporter, SignalTracer]:
        built.append(pipeline(aggregator, **kwargs))  # type: ignore[arg-type]
        return built[-1]

    yield make
    for provider, _, tracer in built:
        tracer.close()
        provider.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_ids_flags_resource_and_scope_are_the_sdks(made) -> None:
    provider, exporter, _ = made()
    send("workflow_started", workflow_id="wf-1", timestamp=T0)
    send("decision_made", agent="pm", decision_type="scope", duration_s=0.1, workflow_id="wf-1",
         timestamp=T0 + 1)
    send("workflow_completed", workflow_id="wf-1", duration_s=2.0, timestamp=T0 + 2)
    spans = by_name(exporter)
    root, child = spans["invoke_workflow"], spans["decision scope"]
    sdk_span = provider.get_tracer("other").start_span("sdk")
    sdk_flags = sdk_span.get_span_context().trace_flags
    sdk_span.end()
    assert root.context.trace_flags == child.context.trace_flags == sdk_flags
    assert root.context.trace_flags.sampled
    assert root.context.trace_id != 0 and root.context.span_id != 0
    assert child.context.span_id not in (0, root.context.span_id)
    assert child.parent == root.context and not child.context.is_remote
    for span in (root, child):
        assert span.resource is provider.resource
        assert (span.instrumentation_scope.name, span.instrumentation_scope.version) == \
            ("scope-name", "1.2")
        assert span.kind is trace.SpanKind.INTERNAL
        assert span.links == ()


def test_provider_id_generator_is_used(made) -> None:
    class Counting(IdGenerator):
        def __init__(self) -> None:
            self.next = 0

        def generate_span_id(self) -> int:
            self.next += 1
            return self.next

        def generate_trace_id(self) -> int:
            return 0xABC

    _, exporter, _ = made(ids=Counting())
    send("agent_activated", agent="pm", timestamp=T0)
    send("decision_made", agent="pm", decision_type="x", duration_s=0.1, timestamp=T0 + 1)
    send("agent_deactivated", agent="pm", timestamp=T0 + 2)
    spans = by_name(exporter)
    assert {s.context.trace_id for s in spans.values()} == {0xABC}
    assert sorted(s.context.span_id for s in spans.values()) == [1, 2]


def test_a_sampler_that_ignores_the_parent_is_asked(made) -> None:
    """ALWAYS_ON records the child of an unsampled remote parent, as the SDK does."""
    provider, exporter, _ = made(sampler="always_on")
    assert provider.sampler is ALWAYS_ON
    send("workflow_started", workflow_id="wf-2", traceparent=UNSAMPLED_PARENT, timestamp=T0)
    send("workflow_completed", workflow_id="wf-2", duration_s=1.0, timestamp=T0 + 1)
    [span] = exporter.get_finished_spans()
    assert span.context.trace_flags.sampled
    assert span.parent.span_id == 0xB7AD6B7169203331 and span.parent.is_remote
    remote = trace.set_span_in_context(trace.NonRecordingSpan(span.parent))
    assert provider.get_tracer("sdk").start_span("sdk", context=remote).is_recording()


def test_unsampled_roots_still_carry_a_context(aggregator: Aggregator) -> None:
    """An unsampled span has ids, so propagation passes on the 'not sampled' decision."""
    provider = TracerProvider(sampler=make_sampler(TracingConfig(sampler_ratio=0.0)),
                              shutdown_on_exit=False)
    builder = SpanBuilder(provider.get_tracer("t"))
    span = builder.start_span("root", None, {}, 1)
    assert type(span) is SpanStub and not span.is_recording()
    assert span.context.is_valid and not span.context.trace_flags.sampled
    child = builder.start_span("child", span, {}, 2)
    assert child.context.trace_id == span.context.trace_id
    assert not child.context.trace_flags.sampled


def test_remote_parent_keeps_its_tracestate(made) -> None:
    _, exporter, _ = made()
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    send("agent_activated", agent="dev", traceparent=parent, tracestate="vendor=abc",
         timestamp=T0)
    send("agent_deactivated", agent="dev", timestamp=T0 + 1)
    [span] = exporter.get_finished_spans()
    assert span.context.trace_state.get("vendor") == "abc"
    assert remote_parent({"traceparent": "00-bad"}) is None


def test_long_strings_are_cut_at_the_span_limit(made) -> None:
    _, exporter, _ = made(limits=SpanLimits(max_span_attribute_length=16,
                                            max_attribute_length=20))
    agent = "a" * 40
    send("agent_activated", agent=agent, timestamp=T0)
    send("safety_blocked", agent=agent, rule="r" * 50, timestamp=T0 + 1)
    send("agent_deactivated", agent=agent, timestamp=T0 + 2)
    [span] = exporter.get_finished_spans()
    assert span.name == f"invoke_agent {agent}"  # names are not attributes: not cut
    assert span.attributes["gen_ai.agent.name"] == "a" * 16
    assert span.events[0].attributes["yolo.safety.rule"] == "r" * 20


def test_default_cap_applies_without_limits(aggregator: Aggregator) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    builder = SpanBuilder(provider.get_tracer("t"))
    assert builder.capped({"k": "x" * (MAX_VALUE_LENGTH + 5), "n": 3}) == \
        {"k": "x" * MAX_VALUE_LENGTH, "n": 3}


def test_events_beyond_the_limit_drop_the_oldest_and_are_counted(made) -> None:
    _, exporter, _ = made(limits=SpanLimits(max_events=2))
    send("agent_activated", agent="qa", timestamp=T0)
    for number in range(3):
        send("safety_blocked", agent="qa", rule=f"rule-{number}", timestamp=T0 + 1 + number)
    send("agent_deactivated", agent="qa", timestamp=T0 + 5)
    [span] = exporter.get_finished_spans()
    assert [e.attributes["yolo.safety.rule"] for e in span.events] == ["rule-1", "rule-2"]
    assert span.dropped_events == 1


@pytest.mark.parametrize("capture", [False, True])
def test_exception_event_matches_record_exception(made, capture: bool) -> None:
    provider, exporter, _ = made(capture_content=capture)
    try:
        raise KeyError("prompt text")
    except KeyError as caught:
        error = caught
    send("agent_activated", agent="dev", timestamp=T0)
    send("error_occurred", agent="dev", error_type="Lookup", exception=error, timestamp=T0 + 1)
    send("agent_deactivated", agent="dev", timestamp=T0 + 2)
    [span] = exporter.get_finished_spans()
    [event] = span.events
    sdk_span = provider.get_tracer("sdk").start_span("sdk")
    sdk_span.record_exception(error, attributes={"error.type": "Lookup",
                                                 "gen_ai.agent.name": "dev"})
    [expected] = sdk_span.events
    sdk_span.end()
    if capture:
        assert dict(event.attributes) == dict(expected.attributes)
    else:
        assert dict(event.attributes) == {"exception.type": "KeyError", "error.type": "Lookup",
                                          "gen_ai.agent.name": "dev"}
    assert span.status.description == "Lookup"


def test_open_spans_are_records_until_they_end(made) -> None:
    _, exporter, tracer = made()
    send("workflow_started", workflow_id="wf-3", timestamp=T0)
    [entry] = list(tracer._open._open.values())
    assert isinstance(entry.span, SpanRecord)
    assert exporter.get_finished_spans() == ()
    send("workflow_completed", workflow_id="wf-3", duration_s=1.0, timestamp=T0 + 1)
    assert len(exporter.get_finished_spans()) == 1


class FixedIds(IdGenerator):
    """Hands out the trace id a test chooses, so the SDK and the builder get the same."""

    def __init__(self) -> None:
        self.trace_id = 1
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        self.span_id += 1
        return self.span_id


SAMPLERS = ["always_on", "always_off", "traceidratio", "parentbased_always_on",
            "parentbased_always_off", "parentbased_traceidratio"]


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("ratio", [0.0, 0.3, 1.0])
def test_built_in_samplers_decide_as_the_sdk_does(sampler: str, ratio: float) -> None:
    """The decisions made without calling the sampler (flags, trace state, recorded) are
    those of the SDK's own tracer with the same sampler, parent and trace id."""
    ids = FixedIds()
    provider = TracerProvider(sampler=make_sampler(TracingConfig(sampler=sampler,
                                                                 sampler_ratio=ratio)),
                              id_generator=ids, shutdown_on_exit=False)
    sdk, builder = provider.get_tracer("sdk"), SpanBuilder(provider.get_tracer("ours"))
    assert builder._rules is not None  # decided without the SDK's objects
    state = TraceState([("vendor", "x")])
    parents = [None]
    for remote in (False, True):
        for flags in (0, 1, 2, 3):
            for trace_state in (None, state):
                parents.append(SpanStub(0, 0xABC, flags, trace_state, remote))
    for number in range(40):
        trace_id = (number * 0x9E3779B97F4A7C15 + 7) % (1 << 128) or 1
        for parent in parents:
            ids.trace_id = trace_id
            if parent is not None:
                parent.trace_id, parent._context, parent._otel_context = trace_id, None, None
            context = parent.otel_context() if parent is not None else None
            expected = sdk.start_span("x", context=context)
            ours = builder.start_span("x", parent, {}, 1)
            want = expected.get_span_context()
            assert (ours.trace_id, int(ours.flags), ours.recording) == (
                want.trace_id, int(want.trace_flags), expected.is_recording()), (parent, number)
            assert (ours.trace_state or TraceState()) == want.trace_state
            expected.end()


def test_other_samplers_are_asked_and_recorded_only_spans_stay_unsampled(
        aggregator: Aggregator) -> None:
    """A sampler the builder does not know is called; a span it records without sampling
    is kept for SDK processors (which skip it) and its children are not sampled."""

    class RecordOnly(Sampler):
        def __init__(self) -> None:
            self.calls = 0

        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                          links=None, trace_state=None) -> SamplingResult:
            self.calls += 1
            return SamplingResult(Decision.RECORD_ONLY, None, TraceState([("s", "1")]))

        def get_description(self) -> str:
            return "RecordOnly"

    sampler = RecordOnly()
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    builder = SpanBuilder(provider.get_tracer("t"))
    root = builder.start_span("root", None, {}, 1)
    assert root.recording and not root.sampled and root.trace_state.get("s") == "1"
    child = builder.start_span("child", root, {}, 2)
    assert sampler.calls == 2 and child.recording and not child.sampled
    child.end(3)
    root.end(4)
    assert memory.get_finished_spans() == ()  # SimpleSpanProcessor exports sampled only


def test_a_processor_added_later_gets_the_spans(aggregator: Aggregator) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    builder = SpanBuilder(provider.get_tracer("t"))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    builder.leaf("late", None, {"k": "v"}, 1, 2)
    [span] = memory.get_finished_spans()
    assert (span.name, dict(span.attributes), span.start_time, span.end_time) == \
        ("late", {"k": "v"}, 1, 2)


class TupleRecorder(SpanProcessor):
    """Keeps the finished tuples the tracer hands to a processor that takes them."""

    def __init__(self) -> None:
        self.spans: list[tuple] = []

    def emit_record(self, span: tuple) -> None:
        self.spans.append(span)


def test_finished_spans_are_left_out_of_the_collectors_generations(
        aggregator: Aggregator) -> None:
    """Compiled, a finished span (leaf or ended record) is not tracked by the garbage
    collector (``telemetry/tracing/spans/untrack.pyx``): spans waiting in the queue never
    fill its generations. A pure-Python build leaves them tracked."""
    from telemetry.compiled import is_compiled
    from telemetry.tracing.spans.record import untracked

    provider = TracerProvider(resource=Resource.create({"service.name": "t"}),
                              shutdown_on_exit=False)
    recorder = TupleRecorder()
    provider.add_span_processor(recorder)
    tracer = SignalTracer(provider.get_tracer("yolo-telemetry"), aggregator, TracingConfig())
    tracer.attach()
    try:
        ReferenceOrchestrator(seed=4).run(workflows=1)
        aggregator.run_pending()
    finally:
        tracer.close()
        provider.shutdown()
    kinds = {span[1].split()[0] for span in recorder.spans}
    assert {"invoke_workflow", "invoke_agent", "decision", "chat"} <= kinds
    compiled = is_compiled("telemetry.tracing.spans.untrack")
    assert compiled == (untracked is not None)
    assert [gc.is_tracked(span) for span in recorder.spans] == [not compiled] * len(
        recorder.spans)
