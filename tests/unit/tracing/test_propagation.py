"""inject/extract and the TracedOrchestrator mixin, in process."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import blinker
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from telemetry.aggregation.aggregator import Aggregator
from telemetry.config import TracingConfig
from telemetry.signals import CONTRACT
from telemetry.tracing import propagation
from telemetry.tracing.traced import (
    TracedOrchestrator,
    agent_step,
    current_workflow_id,
    workflow_step,
)
from telemetry.tracing.tracer import SignalTracer
from tests.conftest import send

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans(aggregator: Aggregator):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = SignalTracer(provider.get_tracer("test"), aggregator, TracingConfig())
    tracer.attach()
    yield exporter
    tracer.close()
    provider.shutdown()


@pytest.fixture
def received():
    """Every contract signal sent during the test, as (short name, fields)."""
    got: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for spec in CONTRACT:
        def receiver(sender: Any, _name: str = spec.name, **fields: Any) -> None:
            got.append((_name.removeprefix("yolo."), fields))
        blinker.signal(spec.name).connect(receiver, weak=False)
        receivers.append((spec.name, receiver))
    yield got
    for name, receiver in receivers:
        blinker.signal(name).disconnect(receiver)


def span_id(exporter: InMemorySpanExporter, name: str) -> int:
    return next(s.context.span_id for s in exporter.get_finished_spans() if s.name == name)


def test_inject_picks_the_most_specific_open_span(spans: InMemorySpanExporter) -> None:
    send("workflow_started", workflow_id="wf-1")
    workflow_ctx = propagation.inject({}, workflow_id="wf-1")
    send("agent_activated", agent="pm", workflow_id="wf-1")
    agent_ctx = propagation.inject({}, workflow_id="wf-1")
    send("handoff_started", from_agent="pm", to_agent="dev", workflow_id="wf-1")
    handoff_ctx = propagation.inject({"story": "S-1"}, workflow_id="wf-1")
    # an open handoff wins over the agent: it is what crosses to the other process
    assert propagation.inject({}, workflow_id="wf-1", agent="pm")["traceparent"] == \
        handoff_ctx["traceparent"]
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.1, workflow_id="wf-1")
    pm_ctx = propagation.inject({}, workflow_id="wf-1", agent="pm")
    send("agent_deactivated", agent="pm", workflow_id="wf-1")
    send("workflow_completed", workflow_id="wf-1", duration_s=1.0)

    def parent_of(carrier: dict) -> int:
        return trace.get_current_span(propagation.extract(carrier)).get_span_context().span_id

    assert handoff_ctx["story"] == "S-1"
    assert parent_of(workflow_ctx) == span_id(spans, "invoke_workflow")
    assert parent_of(agent_ctx) == span_id(spans, "invoke_agent pm")
    assert parent_of(handoff_ctx) == span_id(spans, "handoff pm -> dev")
    assert parent_of(pm_ctx) == span_id(spans, "invoke_agent pm")
    assert int(handoff_ctx["traceparent"][-2:], 16) & 1  # the sampled flag


def test_inject_without_telemetry_span_uses_the_current_otel_context() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    with provider.get_tracer("app").start_as_current_span("app-span") as span:
        carrier = propagation.inject({}, workflow_id="unknown")
    assert carrier["traceparent"].split("-")[2] == format(span.get_span_context().span_id, "016x")
    assert propagation.inject({"a": 1}) == {"a": 1}  # nothing current: nothing added


def test_signal_fields_and_extract() -> None:
    payload = {"traceparent": TRACEPARENT, "tracestate": "", "story": "S-1"}
    assert propagation.signal_fields(payload) == {"traceparent": TRACEPARENT}
    context = trace.get_current_span(propagation.extract(payload)).get_span_context()
    assert (context.trace_id, context.span_id, context.is_remote) == \
        (0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331, True)
    assert not trace.get_current_span(propagation.extract({})).get_span_context().is_valid


class Orchestrator(TracedOrchestrator):
    def run(self, fail: bool = False) -> dict:
        with self.workflow("wf-7", "greenfield"):
            assert current_workflow_id() == "wf-7"
            with self.agent("pm"), self.decision("pm", "prioritise"):
                pass
            with self.handoff("pm", "dev") as handoff:
                payload = handoff.inject({"story": "S-7"})
            self.review(fail)
        return payload

    @agent_step("qa")
    def review(self, fail: bool) -> None:
        if fail:
            raise ValueError("rejected")


def test_traced_orchestrator_only_sends_signals(received: list, spans: InMemorySpanExporter
                                                ) -> None:
    payload = Orchestrator().run()
    names = [name for name, _ in received]
    assert names == ["workflow_started", "agent_activated", "decision_made", "agent_deactivated",
                     "handoff_started", "handoff_completed", "agent_activated",
                     "agent_deactivated", "workflow_completed"]
    assert all(fields.get("workflow_id") == "wf-7" for _, fields in received)
    assert received[2][1]["decision_type"] == "prioritise"
    assert received[5][1]["duration_s"] >= 0
    assert current_workflow_id() is None
    # the spans come from the ordinary tracer, and the payload names the handoff span
    parent = trace.get_current_span(propagation.extract(payload)).get_span_context()
    assert parent.span_id == span_id(spans, "handoff pm -> dev")
    assert {s.name for s in spans.get_finished_spans()} == {
        "invoke_workflow greenfield", "invoke_agent pm", "decision prioritise",
        "handoff pm -> dev", "invoke_agent qa"}


def test_traced_orchestrator_reports_and_reraises(received: list) -> None:
    with pytest.raises(ValueError, match="rejected"):
        Orchestrator().run(fail=True)
    names = [name for name, _ in received]
    assert names[-4:] == ["agent_activated", "error_occurred", "agent_deactivated",
                          "workflow_failed"]
    error = received[-3][1]
    assert (error["agent"], error["error_type"]) == ("qa", "ValueError")
    assert isinstance(error["exception"], ValueError)
    assert received[-1][1]["error_type"] == "ValueError"


def test_decorators_work_on_coroutines(received: list) -> None:
    @workflow_step("batch", workflow_id=lambda n: f"wf-{n}")
    async def run(n: int) -> int:
        await step()
        return n

    @agent_step("dev")
    async def step() -> None:
        await asyncio.sleep(0)

    assert asyncio.run(run(3)) == 3
    assert [(name, fields.get("workflow_id")) for name, fields in received] == [
        ("workflow_started", "wf-3"), ("agent_activated", "wf-3"),
        ("agent_deactivated", "wf-3"), ("workflow_completed", "wf-3")]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_does_not_use_the_parents_tracer(aggregator: Aggregator) -> None:
    """The parent's tracer lock may be held at fork time: the child must not touch it."""
    provider = TracerProvider(shutdown_on_exit=False)
    tracer = SignalTracer(provider.get_tracer("test"), aggregator, TracingConfig())
    tracer.attach()
    try:
        send("workflow_started", workflow_id="wf-f")
        assert "traceparent" in propagation.inject({}, workflow_id="wf-f")
        with tracer._lock:  # as if another parent thread were inside the tracer
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    result: list[dict] = []
                    worker = threading.Thread(
                        target=lambda: result.append(propagation.inject({}, workflow_id="wf-f")),
                        daemon=True)
                    worker.start()
                    worker.join(10)  # a deadlock fails the test instead of hanging it
                    status = 4 if worker.is_alive() else 0 if result == [{}] else 3
                finally:
                    os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        tracer.close()
        provider.shutdown()
