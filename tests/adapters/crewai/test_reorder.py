"""CrewAI calls its listeners from a thread pool, so the adapter sees events out of
order: a shuffled event stream must give exactly the same metrics as the ordered one.

The events of real crew runs are recorded from CrewAI's bus, then fed to the adapter's
own handlers in their order and in many shuffled orders (all before the kickoff's
completion: CrewAI flushes its bus before it emits that), each into a fresh aggregator
on the same frozen clocks; every metric must come out the same."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from crewai.events import crewai_event_bus
from crewai.events.types.crew_events import CrewKickoffCompletedEvent

from telemetry import catalogue as cat
from telemetry.adapters import crewai as adapter
from telemetry.aggregation.aggregator import Aggregator
from tests.adapters.crewai.scenario import delegating_crew, guarded_crew, research_crew
from tests.conftest import FakeClock

Recorded = list[tuple[Any, Any]]
SEEDS = range(25)


def record(*crews: Callable[[], Any]) -> Recorded:
    """(source, event) of every event the adapter listens to, as the bus delivered them."""
    seen: Recorded = []
    handlers = []
    for event_type in adapter.EXTRACTORS:
        def on_event(source: Any, event: Any) -> None:
            seen.append((source, event))
        crewai_event_bus.on(event_type)(on_event)
        handlers.append((event_type, on_event))
    try:
        for make in crews:
            make().kickoff()
        crewai_event_bus.flush()
    finally:
        for event_type, handler in handlers:
            crewai_event_bus.off(event_type, handler)
    return seen


def metrics(stream: Recorded, wall: float) -> dict[str, list[str]]:
    """Feed ``stream`` to a fresh adapter's handlers (not through the bus) and return
    every metric of a fresh aggregator (labels and values; not when a series was
    created); the clocks are frozen, so only the events count."""
    aggregator = Aggregator(clock=FakeClock(), wall_clock=lambda: wall)
    aggregator.connect()
    handle = adapter.instrument(delay_s=3600)  # nothing leaves the buffer by age
    try:
        handlers = dict(handle.listener.handlers)
        for source, event in stream:
            handlers[type(event)](source, event)
        handle.buffer.release_all()
        assert handle.emitter.failures == 0 and handle.buffer.late == 0
        # the process's and the aggregator's own time, not what the events say
        skip = {cat.PROCESS_MEMORY, cat.PROCESS_CPU, cat.HANDLER_TIME}
        return {family.spec.prometheus_name: sorted(repr((sample.labels, sample.value))
                                                    for sample in family.samples)
                for family in aggregator.collect() if family.spec not in skip}
    finally:
        handle.uninstrument()
        aggregator.disconnect()


def shuffled(stream: Recorded, seed: int | None) -> Recorded:
    """``stream`` in a random order (reversed for seed None), except that each kickoff
    completion still comes after every event before it (what CrewAI's flush guarantees)."""
    rng = random.Random(seed)
    out: Recorded = []
    segment: Recorded = []
    for item in [*stream, None]:
        if item is None or isinstance(item[1], CrewKickoffCompletedEvent):
            if seed is None:
                segment.reverse()
            else:
                rng.shuffle(segment)
            out += segment + ([item] if item else [])
            segment = []
        else:
            segment.append(item)
    return out


@pytest.mark.parametrize("crews", [(research_crew, delegating_crew, guarded_crew)],
                         ids=["sequential+delegation+guardrail"])
def test_a_shuffled_event_stream_gives_the_same_metrics(crews) -> None:
    stream = sorted(record(*crews), key=lambda pair: pair[1].timestamp)
    assert len(stream) > 40
    wall = time.time()
    ordered = metrics(stream, wall)
    assert ordered["yolo_handoffs_total"] and ordered["yolo_llm_calls_total"]
    assert ordered["yolo_safety_blocks_total"] and ordered["yolo_tool_calls_total"]
    assert metrics(shuffled(stream, None), wall) == ordered
    for seed in SEEDS:
        assert metrics(shuffled(stream, seed), wall) == ordered, f"seed {seed}"


def test_the_buffer_hands_events_on_by_age_without_a_kickoff_completion() -> None:
    """A failed kickoff (no flush before it) still gets out: after ``delay_s``."""
    stream = [pair for pair in sorted(record(research_crew), key=lambda p: p[1].timestamp)
              if not isinstance(pair[1], CrewKickoffCompletedEvent)]
    handle = adapter.instrument(delay_s=0.2)
    sent: list[str] = []
    handle.tracker._send = lambda name, **fields: sent.append(name)  # type: ignore[method-assign]
    try:
        handlers = dict(handle.listener.handlers)
        now = time.time()
        for source, event in reversed(stream):  # stamped "now": held for 0.2 s
            handlers[type(event)](source, event.model_copy(update={
                "timestamp": event.timestamp.fromtimestamp(
                    now + (event.timestamp.timestamp() - stream[-1][1].timestamp.timestamp()),
                    event.timestamp.tzinfo)}))
        deadline = time.monotonic() + 5
        while len(handle.buffer) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(handle.buffer) == 0
        assert sent[0] == "yolo.workflow_started" and sent[-1] == "yolo.agent_deactivated"
        assert sent.count("yolo.handoff_completed") == 1
    finally:
        handle.uninstrument()
