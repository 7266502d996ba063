"""Events that wait: with the span batch processor, the tracer handles most signals in
batches, yet every span is made, in order, before any export, flush or read."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporters.otlp.batch import SpanBatchProcessor
from exporters.otlp.traces import make_sampler
from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.receiver import QUEUE_BATCH
from telemetry.config import BatchConfig, TracingConfig
from telemetry.tracing.tracer import SignalTracer
from tests.conftest import FakeClock, send

#: A whole second an hour ago: within the accepted timestamp window of now.
T0 = float(int(time.time()) - 3600)


class Batched:
    """A tracer whose spans go to the span batch processor (never exporting on its own:
    the delay is an hour), then to an in-memory exporter."""

    def __init__(self, aggregator: Aggregator, clock: FakeClock, batch_size: int = 512,
                 delay_ms: int = 3_600_000,
                 tracer_class: type[SignalTracer] = SignalTracer) -> None:
        config = TracingConfig()
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=make_sampler(config), shutdown_on_exit=False)
        self.processor = SpanBatchProcessor(self.exporter, BatchConfig(
            max_export_batch_size=batch_size, schedule_delay_ms=delay_ms), aggregator)
        self.provider.add_span_processor(self.processor)
        self.queue: Any = self.processor.direct_queue[0]
        self.tracer = tracer_class(self.provider.get_tracer("test"), aggregator, config,
                                   clock=clock)
        self.tracer.attach()

    def flushed(self) -> list[ReadableSpan]:
        assert self.provider.force_flush()
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def batched(aggregator: Aggregator, clock: FakeClock) -> Iterator[Any]:
    made: list[Batched] = []

    def make(**kwargs: Any) -> Batched:
        made.append(Batched(aggregator, clock, **kwargs))
        return made[-1]

    yield make
    for one in made:
        one.tracer.close()
        one.provider.shutdown()


def decision(number: int, agent: str = "pm") -> None:
    send("decision_made", agent=agent, decision_type=f"d{number}", duration_s=0.1,
         workflow_id="wf-1", timestamp=T0 + number)


def test_leaf_spans_wait_and_reach_the_next_flush(batched: Any) -> None:
    traced = batched()
    send("workflow_started", workflow_id="wf-1", workflow_type="t", timestamp=T0)
    send("agent_activated", agent="pm", workflow_id="wf-1", timestamp=T0)
    for number in range(1, 4):
        decision(number)
    assert len(traced.queue) == 0  # the decisions wait: no span made yet
    spans = {span.name: span for span in traced.flushed()}
    assert {"decision d1", "decision d2", "decision d3"} <= spans.keys()
    assert len(spans) == 3  # the workflow and the agent are still open


def test_waiting_events_are_handled_before_an_event_handled_on_arrival(batched: Any) -> None:
    """A decision sent inside an agent's activation is that activation's child, even
    though it was handled only when the agent's next activation began."""
    traced = batched()
    send("workflow_started", workflow_id="wf-1", workflow_type="t", timestamp=T0)
    send("agent_activated", agent="pm", workflow_id="wf-1", timestamp=T0 + 0.5)
    decision(1)
    send("agent_deactivated", agent="pm", workflow_id="wf-1", timestamp=T0 + 1.5)
    send("agent_activated", agent="pm", workflow_id="wf-1", timestamp=T0 + 2.5)
    decision(3)
    send("agent_deactivated", agent="pm", workflow_id="wf-1", timestamp=T0 + 3.5)
    spans = traced.flushed()
    agents = sorted((s for s in spans if s.name == "invoke_agent pm"), key=lambda s: s.start_time)
    by_name = {s.name: s for s in spans}
    assert len(agents) == 2
    assert by_name["decision d1"].parent.span_id == agents[0].context.span_id
    assert by_name["decision d3"].parent.span_id == agents[1].context.span_id


def test_the_export_worker_handles_waiting_events_on_its_schedule(batched: Any) -> None:
    """A program that sends a few events and goes quiet has their spans exported on
    the worker's schedule, as it would without waiting: no flush needed."""
    traced = batched(delay_ms=20)
    send("workflow_started", workflow_id="wf-1", workflow_type="t", timestamp=T0)
    for number in range(1, 4):
        decision(number)
    deadline = time.monotonic() + 10
    while len(traced.exporter.get_finished_spans()) < 3 and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # polled: the worker exports on its own thread
    names = sorted(span.name for span in traced.exporter.get_finished_spans())
    assert names == ["decision d1", "decision d2", "decision d3"]


def test_the_sender_handles_a_full_batch_of_waiting_events(batched: Any) -> None:
    traced = batched(batch_size=8)  # fewer wait than fill one span batch: 7
    send("workflow_started", workflow_id="wf-1", workflow_type="t", timestamp=T0)
    for number in range(1, 6):  # the workflow's event waits too (its span is open)
        decision(number)
    assert len(traced.queue) == 0
    decision(6)
    assert len(traced.queue) == 6
    traced.tracer.close()  # two tracers would wait no longer than the smaller batch
    big = batched()
    for number in range(1, QUEUE_BATCH):
        decision(number, agent="dev")
    assert len(big.queue) == 0
    decision(QUEUE_BATCH, agent="dev")
    assert len(big.queue) == QUEUE_BATCH


def test_reads_and_close_handle_the_waiting_events(batched: Any) -> None:
    traced = batched()
    send("workflow_started", workflow_id="wf-1", workflow_type="t", timestamp=T0)
    send("agent_activated", agent="pm", workflow_id="wf-1", timestamp=T0)
    send("handoff_started", from_agent="pm", to_agent="dev", workflow_id="wf-1",
         timestamp=T0 + 1)
    context = traced.tracer.current_span_context("wf-1")
    decision(2)
    traced.tracer.close()  # ends what is open, the waiting decision made first
    spans = {span.name: span for span in traced.flushed()}
    assert context.span_id == spans["handoff pm -> dev"].context.span_id
    assert spans["decision d2"].parent.span_id == spans["invoke_agent pm"].context.span_id


class FailingDecisions(SignalTracer):
    def _decision_made(self, f: dict, ts: float) -> None:
        raise RuntimeError("a handler bug")


def test_a_waiting_event_that_fails_is_counted_and_the_rest_are_handled(
        batched: Any, aggregator: Aggregator) -> None:
    traced = batched(tracer_class=FailingDecisions)
    send("workflow_started", workflow_id="wf-1", workflow_type="t", timestamp=T0)
    decision(1)
    send("state_saved", size_bytes=10, duration_s=0.1, workflow_id="wf-1", timestamp=T0 + 2)
    assert [span.name for span in traced.flushed()] == ["state_save"]
    assert aggregator.value(cat.DROPPED, ("listener", "exception")) == 1


def test_nothing_waits_for_other_span_processors(aggregator: Aggregator, clock: FakeClock) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = SignalTracer(provider.get_tracer("test"), aggregator, TracingConfig(), clock=clock)
    tracer.attach()
    try:
        send("workflow_started", workflow_id="wf-1", workflow_type="t", timestamp=T0)
        decision(1)
        assert [span.name for span in exporter.get_finished_spans()] == ["decision d1"]
    finally:
        tracer.close()
