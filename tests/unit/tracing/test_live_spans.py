"""The live span as other code sees it: an application span around a workflow is its
parent, a decision block's id comes from the provider's id generator, and what is
recorded on the current span while one of our recorded spans is open reaches it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Status, StatusCode

from exporters.otlp.traces import make_sampler
from telemetry.aggregation.aggregator import Aggregator
from telemetry.config import TracingConfig
from telemetry.tracing.traced import TracedOrchestrator
from telemetry.tracing.tracer import SignalTracer
from tests.conftest import FakeClock, send
from tests.unit.tracing.test_tracing import Traced


class CountingIds(IdGenerator):
    """An id generator of the application's: ids from a known range."""

    def __init__(self) -> None:
        self.span_ids: list[int] = []
        self._next = itertools.count(0xABC000)

    def generate_span_id(self) -> int:
        self.span_ids.append(next(self._next))
        return self.span_ids[-1]

    def generate_trace_id(self) -> int:
        return 0xFEED0000 + next(self._next)


@pytest.fixture
def traced(aggregator: Aggregator, clock: FakeClock) -> Iterator:
    made: list[Traced] = []

    def make(**tracing: object) -> Traced:
        made.append(Traced(aggregator, clock, **tracing))
        return made[-1]

    token = otel_context.attach(otel_context.Context())  # every test starts with no span
    yield make
    otel_context.detach(token)
    for item in made:
        item.tracer.close()
        item.provider.shutdown()


def test_an_application_span_around_the_workflow_is_its_parent(traced) -> None:
    t = traced()
    with t.provider.get_tracer("app").start_as_current_span("handle request") as request:
        send("workflow_started", workflow_id="wf")
        send("agent_activated", agent="pm", workflow_id="wf")
        send("agent_deactivated", agent="pm", workflow_id="wf")
        send("workflow_completed", workflow_id="wf", duration_s=0.1)
    send("workflow_started", workflow_id="wf-2")  # none around this one: a root
    send("workflow_completed", workflow_id="wf-2", duration_s=0.1)
    (pm,) = [s for s in t.spans() if s.name == "invoke_agent pm"]
    workflows = [s for s in t.spans() if s.name == "invoke_workflow"]
    inside = next(s for s in workflows if s.attributes["yolo.workflow.id"] == "wf")
    after = next(s for s in workflows if s.attributes["yolo.workflow.id"] == "wf-2")
    context = request.get_span_context()
    assert inside.parent is not None and inside.parent.span_id == context.span_id
    assert inside.context.trace_id == context.trace_id
    assert pm.context.trace_id == context.trace_id
    assert after.parent is None and after.context.trace_id != context.trace_id


def test_an_application_span_is_not_the_parent_with_the_live_context_off(traced) -> None:
    t = traced(live_context=False)
    with t.provider.get_tracer("app").start_as_current_span("handle request"):
        send("workflow_started", workflow_id="wf")
        send("workflow_completed", workflow_id="wf", duration_s=0.1)
    assert t.by_name()["invoke_workflow"].parent is None


def test_a_decision_blocks_span_id_comes_from_the_providers_id_generator(
        aggregator: Aggregator, clock: FakeClock) -> None:
    ids = CountingIds()
    exporter = InMemorySpanExporter()
    config = TracingConfig()
    provider = TracerProvider(sampler=make_sampler(config), id_generator=ids,
                              shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = SignalTracer(provider.get_tracer("test"), aggregator, config, clock=clock)
    tracer.attach()
    token = otel_context.attach(otel_context.Context())
    try:
        orchestrator = TracedOrchestrator()
        with (orchestrator.workflow("wf"), orchestrator.agent("pm"),
              orchestrator.decision("pm", "prioritise")):
            current = trace.get_current_span().get_span_context().span_id
    finally:
        otel_context.detach(token)
        tracer.close()
        provider.shutdown()
    (decision,) = [s for s in exporter.get_finished_spans() if s.name == "decision prioritise"]
    assert decision.context.span_id == current
    assert current in ids.span_ids
    assert all(s.context.span_id in ids.span_ids for s in exporter.get_finished_spans())


def test_what_is_recorded_on_the_current_span_reaches_our_open_span(traced) -> None:
    t = traced()
    send("workflow_started", workflow_id="wf")
    send("agent_activated", agent="pm", workflow_id="wf")
    span = trace.get_current_span()
    assert span.is_recording()
    span.set_attribute("app.request", "r-1")
    span.set_attributes({"app.retries": 2, "app.tags": ["a", "b"], "": "no key",
                         "app.object": object(), "app.mixed": [1, "x"]})
    span.add_event("cache miss", {"app.key_count": 3})
    span.record_exception(ValueError("secret prompt text"))
    span.set_status(Status(StatusCode.ERROR, "upstream failed"))
    send("agent_deactivated", agent="pm", workflow_id="wf")
    assert not span.is_recording()
    span.set_attribute("app.late", True)  # the span has ended: nothing happens
    current = trace.get_current_span()
    current.set_attribute("app.on_workflow", 1)
    send("workflow_completed", workflow_id="wf", duration_s=0.1)
    spans = t.by_name()
    pm, workflow = spans["invoke_agent pm"], spans["invoke_workflow"]
    assert pm.attributes["app.request"] == "r-1"
    assert pm.attributes["app.retries"] == 2
    assert pm.attributes["app.tags"] == ("a", "b")
    for dropped in ("", "app.object", "app.mixed", "app.late"):
        assert dropped not in pm.attributes
    events = {event.name: event for event in pm.events}
    assert events["cache miss"].attributes["app.key_count"] == 3
    assert events["exception"].attributes["exception.type"] == "ValueError"
    assert "exception.message" not in events["exception"].attributes  # capture_content off
    assert pm.status.status_code is StatusCode.ERROR
    assert pm.status.description == "upstream failed"
    assert workflow.attributes["app.on_workflow"] == 1


def test_unsampled_and_decision_spans_record_nothing(traced) -> None:
    t = traced(sampler_ratio=0.0)
    send("workflow_started", workflow_id="wf")
    assert not trace.get_current_span().is_recording()
    trace.get_current_span().set_attribute("app.x", 1)  # no error, nothing kept
    send("workflow_completed", workflow_id="wf", duration_s=0.1)
    assert t.spans() == []
    traced()
    orchestrator = TracedOrchestrator()
    with (orchestrator.workflow("wf-2"), orchestrator.agent("pm"),
          orchestrator.decision("pm", "plan")):
        assert not trace.get_current_span().is_recording()
