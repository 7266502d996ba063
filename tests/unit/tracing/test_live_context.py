"""Live context: while our workflow, agent or decision span is open it is the current
OpenTelemetry span of the thread or task that opened it, and only while it is open."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace

from telemetry.aggregation.aggregator import Aggregator
from telemetry.tracing.live import LiveSpan
from telemetry.tracing.traced import TracedOrchestrator
from tests.conftest import FakeClock, send
from tests.unit.tracing.test_tracing import Traced


@pytest.fixture
def traced(aggregator: Aggregator, clock: FakeClock) -> Iterator[Traced]:
    made: list[Traced] = []

    def make(**tracing: object) -> Traced:
        made.append(Traced(aggregator, clock, **tracing))
        return made[-1]

    token = otel_context.attach(otel_context.Context())  # every test starts with no span
    yield make  # type: ignore[misc]
    otel_context.detach(token)
    for item in made:
        item.tracer.close()
        item.provider.shutdown()


def current_ids() -> tuple[int, int] | None:
    context = trace.get_current_span().get_span_context()
    return (context.trace_id, context.span_id) if context.is_valid else None


def ids(span) -> tuple[int, int]:
    return span.context.trace_id, span.context.span_id


def other_span(t: Traced, name: str) -> None:
    """What other instrumentation does: a span from the current context."""
    with t.provider.get_tracer("other").start_as_current_span(name):
        pass


def test_open_workflow_and_agent_are_the_parents_of_other_spans(traced) -> None:
    t = traced()
    send("workflow_started", workflow_id="wf", workflow_type="story")
    other_span(t, "in workflow")
    send("agent_activated", agent="pm", workflow_id="wf")
    other_span(t, "in pm")
    send("agent_deactivated", agent="pm", workflow_id="wf")
    other_span(t, "after pm")
    send("workflow_completed", workflow_id="wf", duration_s=0.1)
    assert current_ids() is None
    other_span(t, "after workflow")
    spans = t.by_name()
    workflow, pm = spans["invoke_workflow story"], spans["invoke_agent pm"]
    assert spans["in pm"].parent.span_id == pm.context.span_id
    assert spans["in pm"].context.trace_id == pm.context.trace_id == workflow.context.trace_id
    assert spans["in workflow"].parent.span_id == workflow.context.span_id
    assert spans["after pm"].parent.span_id == workflow.context.span_id
    assert spans["after workflow"].parent is None
    assert spans["after workflow"].context.trace_id != workflow.context.trace_id


def test_a_missing_agent_deactivated_does_not_outlive_the_workflow(traced) -> None:
    t = traced()
    send("workflow_started", workflow_id="wf")
    send("agent_activated", agent="pm", workflow_id="wf")
    send("workflow_completed", workflow_id="wf", duration_s=0.1)
    assert current_ids() is None
    send("workflow_started", workflow_id="wf-2")
    other_span(t, "next")
    send("workflow_completed", workflow_id="wf-2", duration_s=0.1)
    spans = t.spans()
    workflow_2 = next(s for s in spans if s.attributes.get("yolo.workflow.id") == "wf-2"
                      and s.name == "invoke_workflow")
    assert next(s for s in spans if s.name == "next").parent.span_id == \
        workflow_2.context.span_id


def test_the_live_span_is_an_opentelemetry_span_to_the_api(traced) -> None:
    """Code written against the API alone sees a span: isinstance, use_span, the
    no-op tracer's children, and the calls a non-recording span ignores."""
    t = traced()
    send("agent_activated", agent="pm", workflow_id="wf")
    live = trace.get_current_span()
    assert isinstance(live, trace.Span)
    pm = current_ids()
    assert pm is not None and live.is_recording()
    live.update_name("renamed")
    live.add_link(trace.INVALID_SPAN_CONTEXT)
    live.end()  # ends nothing: the span closes with its signal
    with trace.use_span(live, end_on_exit=True) as used:
        assert used is live
    with live as entered:
        assert entered is live
    child = trace.NoOpTracer().start_span("no-op child")
    assert (child.get_span_context().trace_id, child.get_span_context().span_id) == pm
    assert current_ids() == pm and live.is_recording()
    send("agent_deactivated", agent="pm", workflow_id="wf")
    assert current_ids() is None and not live.is_recording()
    [agent] = [s for s in t.spans() if s.name == "invoke_agent pm"]
    assert (agent.context.trace_id, agent.context.span_id) == pm


def test_a_span_ended_elsewhere_is_no_longer_current_here(traced, clock: FakeClock) -> None:
    t = traced(open_span_ttl_s=10)
    send("workflow_started", workflow_id="wf")
    send("agent_activated", agent="pm", workflow_id="wf")
    pm = current_ids()
    # the deactivation comes from another thread: this thread's context still holds pm
    worker = threading.Thread(target=send, args=("agent_deactivated",),
                              kwargs={"agent": "pm", "workflow_id": "wf"})
    worker.start()
    worker.join()
    assert isinstance(trace.get_current_span(), LiveSpan)
    assert current_ids() != pm  # pm ended: the workflow is the current span here again
    other_span(t, "after pm")
    clock.now += 11  # the workflow expires (its TTL), checked on the next traced event
    send("agent_activated", agent="qa", workflow_id="other")
    send("agent_deactivated", agent="qa", workflow_id="other")
    assert current_ids() is None
    workflow = next(s for s in t.spans() if s.name == "invoke_workflow")
    assert t.by_name()["after pm"].parent.span_id == workflow.context.span_id


def test_an_agent_reactivated_without_deactivation_replaces_the_old_one(traced) -> None:
    t = traced()
    send("agent_activated", agent="pm")
    send("agent_activated", agent="pm")  # the first is abandoned
    other_span(t, "inside")
    send("agent_deactivated", agent="pm")
    assert current_ids() is None
    second = [s for s in t.spans() if s.name == "invoke_agent pm"
              and not s.attributes.get("yolo.span.unfinished")]
    inside = next(s for s in t.spans() if s.name == "inside")
    assert inside.parent.span_id == second[0].context.span_id


def test_threads_keep_their_own_context(traced) -> None:
    t = traced()
    seen: dict[str, tuple[int, int] | None] = {}
    activated = threading.Event()
    checked = threading.Event()

    def agent_thread() -> None:
        send("agent_activated", agent="dev", workflow_id="wf")
        seen["dev"] = current_ids()
        activated.set()
        checked.wait(10)
        send("agent_deactivated", agent="dev", workflow_id="wf")

    worker = threading.Thread(target=agent_thread)
    worker.start()
    assert activated.wait(10)
    seen["main"] = current_ids()
    checked.set()
    worker.join()
    assert seen["main"] is None
    assert seen["dev"] == ids(t.by_name()["invoke_agent dev"])


def test_concurrent_tasks_nest_under_their_own_agent(traced) -> None:
    t = traced()

    async def agent(name: str, both_open: asyncio.Barrier) -> None:
        send("agent_activated", agent=name, workflow_id="wf")
        await both_open.wait()  # the other task's agent is open too now
        other_span(t, f"work of {name}")
        send("agent_deactivated", agent=name, workflow_id="wf")

    async def main() -> None:
        send("workflow_started", workflow_id="wf")
        barrier = asyncio.Barrier(2)
        await asyncio.gather(agent("pm", barrier), agent("dev", barrier))
        send("workflow_completed", workflow_id="wf", duration_s=0.1)

    asyncio.run(main())
    spans = t.by_name()
    for name in ("pm", "dev"):
        assert spans[f"work of {name}"].parent.span_id == \
            spans[f"invoke_agent {name}"].context.span_id


def test_a_decision_block_is_the_parent_of_spans_inside_it(traced) -> None:
    t = traced()

    class Orchestrator(TracedOrchestrator):
        pass

    orchestrator = Orchestrator()
    with orchestrator.workflow("wf"), orchestrator.agent("pm"):
        with orchestrator.decision("pm", "prioritise"):
            other_span(t, "llm call")
        other_span(t, "after the decision")
    assert current_ids() is None
    spans = t.by_name()
    decision, pm = spans["decision prioritise"], spans["invoke_agent pm"]
    assert decision.parent.span_id == pm.context.span_id
    assert spans["llm call"].parent.span_id == decision.context.span_id
    assert spans["llm call"].context.trace_id == decision.context.trace_id
    assert spans["after the decision"].parent.span_id == pm.context.span_id


def test_a_decision_outside_any_of_our_spans_sets_nothing(traced) -> None:
    traced()
    with TracedOrchestrator().decision("pm", "alone"):
        assert current_ids() is None


def test_unsampled_workflows_keep_other_spans_unsampled(traced) -> None:
    t = traced(sampler_ratio=0.0)
    send("workflow_started", workflow_id="wf")
    send("agent_activated", agent="pm", workflow_id="wf")
    assert current_ids() is not None
    assert not trace.get_current_span().get_span_context().trace_flags.sampled
    other_span(t, "inside")
    send("agent_deactivated", agent="pm", workflow_id="wf")
    send("workflow_completed", workflow_id="wf", duration_s=0.1)
    assert t.spans() == []


def test_live_context_can_be_switched_off(traced) -> None:
    traced(live_context=False)
    send("workflow_started", workflow_id="wf")
    send("agent_activated", agent="pm", workflow_id="wf")
    assert current_ids() is None
    send("agent_deactivated", agent="pm", workflow_id="wf")
    send("workflow_completed", workflow_id="wf", duration_s=0.1)


def test_stop_makes_every_live_span_inert(traced) -> None:
    t = traced()
    send("agent_activated", agent="pm")
    assert current_ids() is not None
    t.tracer.close()
    assert current_ids() is None
