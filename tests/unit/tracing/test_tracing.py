"""Signals -> spans, in process: layout, attributes, timestamps, bounds, sampling."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from exporters.otlp.traces import make_sampler
from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.config import TracingConfig
from telemetry.tracing.spans.builder import SpanBuilder
from telemetry.tracing.tracer import SignalTracer
from tests.conftest import FakeClock, send
from tests.support import ROOT

#: A whole second an hour ago: within the accepted timestamp window of now.
T0 = float(int(time.time()) - 3600)


class Traced:
    """A tracer wired to an aggregator and an in-memory exporter."""

    def __init__(self, aggregator: Aggregator, clock: FakeClock, **tracing: object) -> None:
        self.config = TracingConfig(**tracing)
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=make_sampler(self.config), shutdown_on_exit=False)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.aggregator = aggregator
        self.tracer = SignalTracer(self.provider.get_tracer("test"), aggregator, self.config,
                                   clock=clock)
        self.tracer.attach()

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def by_name(self) -> dict[str, ReadableSpan]:
        found = {}
        for span in self.spans():
            assert span.name not in found, f"duplicate span {span.name}"
            found[span.name] = span
        return found

    def dropped(self, reason: str) -> float:
        return self.aggregator.value(cat.DROPPED, ("tracer", reason))


@pytest.fixture
def traced(aggregator: Aggregator, clock: FakeClock) -> Iterator[Traced]:
    made: list[Traced] = []

    def make(**tracing: object) -> Traced:
        made.append(Traced(aggregator, clock, **tracing))
        return made[-1]

    yield make  # type: ignore[misc]
    for item in made:
        item.tracer.close()
        item.provider.shutdown()


def ns(ts: float) -> int:
    return int(ts * 1e9)


def run_workflow(wf: str = "wf-1", fail: bool = False) -> None:
    send("workflow_started", workflow_id=wf, workflow_type="greenfield", timestamp=T0)
    send("agent_activated", agent="pm", workflow_id=wf, timestamp=T0 + 1)
    send("context_updated", agent="pm", items=3, tokens=1200, workflow_id=wf, timestamp=T0 + 1.1)
    send("decision_made", agent="pm", decision_type="prioritise", duration_s=0.5,
         workflow_id=wf, timestamp=T0 + 2)
    send("context_refreshed", agent="pm", duration_s=0.25, workflow_id=wf, timestamp=T0 + 2.5)
    send("safety_blocked", agent="pm", rule="budget_guard", workflow_id=wf, timestamp=T0 + 2.6)
    send("agent_deactivated", agent="pm", workflow_id=wf, timestamp=T0 + 3)
    send("handoff_started", from_agent="pm", to_agent="dev", workflow_id=wf, timestamp=T0 + 3)
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.9, workflow_id=wf,
         timestamp=T0 + 4)
    send("agent_activated", agent="dev", workflow_id=wf, timestamp=T0 + 4)
    send("error_occurred", agent="dev", error_type="ToolTimeout",
         exception=TimeoutError("prompt text: secret plan"), workflow_id=wf, timestamp=T0 + 5)
    send("state_saved", duration_s=0.1, size_bytes=2048, workflow_id=wf, timestamp=T0 + 5.5)
    send("agent_deactivated", agent="dev", workflow_id=wf, timestamp=T0 + 6)
    if fail:
        send("workflow_failed", workflow_id=wf, duration_s=7.0, error_type="ToolTimeout",
             timestamp=T0 + 7)
    else:
        send("workflow_completed", workflow_id=wf, duration_s=7.0, timestamp=T0 + 7)


def test_workflow_tree_names_parents_and_exact_times(traced) -> None:
    t = traced()
    run_workflow()
    spans = t.by_name()
    assert set(spans) == {
        "invoke_workflow greenfield", "invoke_agent pm", "invoke_agent dev",
        "decision prioritise", "context_refresh pm", "handoff pm -> dev", "state_save"}
    wf = spans["invoke_workflow greenfield"]
    assert wf.parent is None
    trace_ids = {s.context.trace_id for s in spans.values()}
    assert trace_ids == {wf.context.trace_id}

    def parent(name: str) -> str:
        parent_id = spans[name].parent.span_id
        return next(n for n, s in spans.items() if s.context.span_id == parent_id)

    assert parent("invoke_agent pm") == "invoke_workflow greenfield"
    assert parent("invoke_agent dev") == "invoke_workflow greenfield"
    assert parent("handoff pm -> dev") == "invoke_workflow greenfield"
    assert parent("state_save") == "invoke_workflow greenfield"
    assert parent("decision prioritise") == "invoke_agent pm"
    assert parent("context_refresh pm") == "invoke_agent pm"

    assert (wf.start_time, wf.end_time) == (ns(T0), ns(T0 + 7))
    pm = spans["invoke_agent pm"]
    assert (pm.start_time, pm.end_time) == (ns(T0 + 1), ns(T0 + 3))
    assert (spans["decision prioritise"].start_time,
            spans["decision prioritise"].end_time) == (ns(T0 + 1.5), ns(T0 + 2))
    # handoff_started was seen: timed by the two signals, not by duration_s
    handoff = spans["handoff pm -> dev"]
    assert (handoff.start_time, handoff.end_time) == (ns(T0 + 3), ns(T0 + 4))


def test_attributes_follow_genai_conventions(traced) -> None:
    t = traced()
    run_workflow()
    spans = t.by_name()
    assert dict(spans["invoke_workflow greenfield"].attributes) == {
        "gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "greenfield",
        "gen_ai.conversation.id": "wf-1", "yolo.workflow.id": "wf-1",
        "yolo.workflow.outcome": "completed"}
    assert dict(spans["invoke_agent pm"].attributes) == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "pm",
        "gen_ai.conversation.id": "wf-1", "yolo.context.tokens": 1200, "yolo.context.items": 3}
    assert dict(spans["handoff pm -> dev"].attributes) == {
        "yolo.handoff.from_agent": "pm", "yolo.handoff.to_agent": "dev",
        "gen_ai.agent.handoff.source.name": "pm", "gen_ai.agent.handoff.target.name": "dev",
        "gen_ai.conversation.id": "wf-1"}
    assert spans["decision prioritise"].attributes["yolo.decision.type"] == "prioritise"
    assert spans["state_save"].attributes["yolo.state.size"] == 2048
    [block] = spans["invoke_agent pm"].events
    assert block.name == "yolo.safety_blocked"
    assert dict(block.attributes) == {"yolo.safety.rule": "budget_guard",
                                      "gen_ai.agent.name": "pm"}
    assert block.timestamp == ns(T0 + 2.6)
    assert spans["invoke_agent pm"].status.status_code is StatusCode.UNSET


def test_error_is_an_exception_event_without_the_message_by_default(traced) -> None:
    t = traced()
    run_workflow()
    dev = t.by_name()["invoke_agent dev"]
    [event] = dev.events
    assert event.name == "exception"
    assert event.timestamp == ns(T0 + 5)
    assert dict(event.attributes) == {"exception.type": "TimeoutError",
                                      "error.type": "ToolTimeout", "gen_ai.agent.name": "dev"}
    assert dev.status.status_code is StatusCode.ERROR
    assert dev.attributes["error.type"] == "ToolTimeout"
    assert "secret" not in repr([dict(s.attributes) for s in t.spans()])


def test_capture_content_records_the_exception_message(traced) -> None:
    t = traced(capture_content=True)
    run_workflow()
    [event] = t.by_name()["invoke_agent dev"].events
    assert event.attributes["exception.message"] == "prompt text: secret plan"
    assert event.attributes["exception.type"] == "TimeoutError"
    assert event.attributes["error.type"] == "ToolTimeout"


def test_failed_workflow_has_error_status(traced) -> None:
    t = traced()
    run_workflow(fail=True)
    wf = t.by_name()["invoke_workflow greenfield"]
    assert wf.status.status_code is StatusCode.ERROR
    assert wf.status.description == "ToolTimeout"
    assert wf.attributes["error.type"] == "ToolTimeout"
    assert wf.attributes["yolo.workflow.outcome"] == "failed"


def test_completion_only_signals_are_timed_from_duration(traced) -> None:
    t = traced()
    send("handoff_completed", from_agent="sm", to_agent="dev", duration_s=2.0,
         workflow_id="wf-9", timestamp=T0 + 10)
    send("workflow_completed", workflow_id="wf-9", duration_s=30.0, timestamp=T0 + 20)
    spans = t.by_name()
    handoff, wf = spans["handoff sm -> dev"], spans["invoke_workflow"]
    assert (handoff.start_time, handoff.end_time) == (ns(T0 + 8), ns(T0 + 10))
    assert (wf.start_time, wf.end_time) == (ns(T0 - 10), ns(T0 + 20))


def test_child_span_does_not_start_before_its_parent(traced) -> None:
    t = traced()
    send("agent_activated", agent="qa", timestamp=T0)
    send("decision_made", agent="qa", decision_type="approve", duration_s=5.0,
         timestamp=T0 + 1)
    send("agent_deactivated", agent="qa", timestamp=T0 + 2)
    decision = t.by_name()["decision approve"]
    assert (decision.start_time, decision.end_time) == (ns(T0), ns(T0 + 1))


def test_events_without_workflow_id_attach_to_the_agent_or_are_roots(traced) -> None:
    t = traced()
    send("agent_activated", agent="architect", workflow_id="wf-2", timestamp=T0)
    # no workflow_id: goes to the open span of that agent
    send("decision_made", agent="architect", decision_type="tech_stack", duration_s=0.1,
         timestamp=T0 + 1)
    send("agent_deactivated", agent="architect", timestamp=T0 + 2)
    # nothing open: a root span, and a zero-length agent span for an instant event
    send("decision_made", agent="po", decision_type="reorder_backlog", duration_s=0.1,
         timestamp=T0 + 3)
    send("error_occurred", agent="po", error_type="RateLimited", timestamp=T0 + 4)
    spans = t.by_name()
    assert spans["decision tech_stack"].parent.span_id == \
        spans["invoke_agent architect"].context.span_id
    assert spans["decision reorder_backlog"].parent is None
    orphan = spans["invoke_agent po"]
    assert orphan.parent is None and orphan.start_time == orphan.end_time == ns(T0 + 4)
    assert [e.name for e in orphan.events] == ["exception"]
    assert orphan.events[0].attributes["exception.type"] == "RateLimited"
    assert orphan.status.status_code is StatusCode.ERROR
    assert t.tracer.open_spans == 0


def test_traceparent_field_continues_a_remote_trace(traced) -> None:
    t = traced()
    remote = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    send("agent_activated", agent="dev", workflow_id="wf-3", traceparent=remote, timestamp=T0)
    send("agent_deactivated", agent="dev", workflow_id="wf-3", timestamp=T0 + 1)
    send("agent_activated", agent="qa", workflow_id="wf-3", traceparent="garbage",
         timestamp=T0 + 2)
    send("agent_deactivated", agent="qa", workflow_id="wf-3", timestamp=T0 + 3)
    spans = t.by_name()
    dev = spans["invoke_agent dev"]
    assert dev.context.trace_id == 0x0af7651916cd43dd8448eb211c80319c
    assert dev.parent.span_id == 0xb7ad6b7169203331 and dev.parent.is_remote
    assert spans["invoke_agent qa"].parent is None  # an invalid traceparent is ignored


def test_unsampled_remote_parent_is_honoured_by_parent_based_sampler(traced) -> None:
    t = traced()
    send("workflow_started", workflow_id="wf-4",
         traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", timestamp=T0)
    send("agent_activated", agent="dev", workflow_id="wf-4", timestamp=T0 + 1)
    send("agent_deactivated", agent="dev", workflow_id="wf-4", timestamp=T0 + 2)
    send("workflow_completed", workflow_id="wf-4", duration_s=3.0, timestamp=T0 + 3)
    assert t.spans() == []
    assert t.tracer.open_spans == 0


@pytest.mark.parametrize(("ratio", "expected"), [(0.0, 0), (1.0, 7)])
def test_sampling_ratio(traced, aggregator: Aggregator, ratio: float, expected: int) -> None:
    t = traced(sampler_ratio=ratio)
    run_workflow()
    assert len(t.spans()) == expected
    assert t.tracer.open_spans == 0
    # metrics are not affected by sampling
    assert aggregator.value(cat.HANDOFFS, ("pm", "dev")) == 1
    assert aggregator.value(cat.WORKFLOWS, ("completed",)) == 1


def test_open_spans_expire_after_ttl_and_are_counted(traced, clock: FakeClock) -> None:
    t = traced(open_span_ttl_s=60)
    send("workflow_started", workflow_id="wf-5", timestamp=T0)
    send("agent_activated", agent="pm", workflow_id="wf-5", timestamp=T0 + 1)
    send("decision_made", agent="pm", decision_type="scope_cut", duration_s=0.1,
         workflow_id="wf-5", timestamp=T0 + 5)
    assert t.tracer.open_spans == 2
    clock.advance(61)
    send("mode_changed", mode="paused")  # not traced: expiry waits for a traced event
    assert t.tracer.open_spans == 2
    send("agent_activated", agent="qa", workflow_id="wf-6", timestamp=T0 + 100)
    assert t.tracer.open_spans == 1
    assert t.dropped("abandoned") == 2
    spans = t.by_name()
    wf, pm = spans["invoke_workflow"], spans["invoke_agent pm"]
    assert wf.attributes["yolo.span.unfinished"] is True
    # ended at their last activity, not at expiry time
    assert wf.end_time == ns(T0 + 1) and pm.end_time == ns(T0 + 5)


def test_open_span_table_is_bounded(traced) -> None:
    t = traced(max_open_spans=3)
    for number in range(5):
        send("workflow_started", workflow_id=f"wf-{number}", timestamp=T0 + number)
    assert t.tracer.open_spans == 3
    assert t.dropped("abandoned") == 2
    assert sorted(s.attributes["yolo.workflow.id"] for s in t.spans()) == ["wf-0", "wf-1"]


def test_workflow_end_closes_children_left_open(traced) -> None:
    t = traced()
    send("workflow_started", workflow_id="wf-7", timestamp=T0)
    send("agent_activated", agent="dev", workflow_id="wf-7", timestamp=T0 + 1)
    send("handoff_started", from_agent="dev", to_agent="qa", workflow_id="wf-7", timestamp=T0 + 2)
    send("workflow_failed", workflow_id="wf-7", duration_s=3.0, error_type="Cancelled",
         timestamp=T0 + 3)
    spans = t.by_name()
    assert spans["invoke_agent dev"].end_time == ns(T0 + 3)
    assert spans["handoff dev -> qa"].attributes["yolo.span.unfinished"] is True
    assert t.dropped("abandoned") == 2
    assert t.tracer.open_spans == 0


def test_close_ends_open_spans_as_unfinished(traced, aggregator: Aggregator) -> None:
    t = traced()
    send("workflow_started", workflow_id="wf-8", timestamp=T0)
    t.tracer.close()
    assert [s.name for s in t.spans()] == ["invoke_workflow"]
    assert t.dropped("unfinished") == 1
    send("workflow_completed", workflow_id="wf-8", duration_s=1.0, timestamp=T0 + 1)
    assert len(t.spans()) == 1  # detached: no more spans


def test_tracer_failure_never_reaches_the_sender(traced, aggregator: Aggregator) -> None:
    t = traced()

    class Broken(SpanBuilder):
        def start_span(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("tracer bug")

    t.tracer._tracer = Broken(t.provider.get_tracer("broken"))
    send("workflow_started", workflow_id="wf-x", timestamp=T0)  # must not raise
    # made when sent (the live context), then again when recorded: both failed
    assert aggregator.value(cat.DROPPED, ("listener", "exception")) == 2
    assert aggregator.value(cat.WORKFLOWS_STARTED) == 1


def test_docs_name_every_span_attribute_and_event() -> None:
    """docs/tracing.md is the reference: every attribute the tracer sets is in it."""

    from telemetry.tracing import tracer
    from telemetry.tracing.spans import attributes

    text = (ROOT / "docs" / "tracing.md").read_text()
    names = [value for module in (attributes, tracer) for key, value in vars(module).items()
             if key.isupper() and isinstance(value, str) and "." in value]
    assert len(names) >= 15
    missing = [name for name in names if f"`{name}`" not in text]
    assert missing == []
    for span_name in ("invoke_workflow {workflow_type}", "invoke_agent {agent}",
                      "handoff {from_agent} -> {to_agent}", "decision {decision_type}",
                      "context_refresh {agent}", "state_save", "state_load",
                      "yolo.safety_blocked", "exception"):
        assert f"`{span_name}`" in text, span_name
