"""Queued recording: while no listener is attached, events wait in the aggregator's queue
and are recorded in order by the sender that fills it, by every read, by disconnect();
with a listener attached they are recorded in line. Nothing is lost silently."""

from __future__ import annotations

from typing import Any

import blinker
import pytest

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.handlers.table import FAST_PATHS
from telemetry.aggregation.receiver import QUEUE_BATCH
from tests.conftest import FakeClock, send


def handoffs(aggregator: Aggregator) -> float:
    return aggregator.value(cat.HANDOFFS, ("pm", "dev"))


def handoff(duration_s: float = 0.1, **fields: object) -> None:
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=duration_s,
         **fields)


def recorded_cells(aggregator: Aggregator) -> int:
    """Handoff cells in the state, read without a read method (which records the queue)."""
    return len(aggregator.state.series[cat.HANDOFFS].cells)


def test_a_read_sees_every_event_sent_before_it(aggregator: Aggregator) -> None:
    for _ in range(3):
        handoff()
    assert recorded_cells(aggregator) == 0  # queued: a send is one append
    assert handoffs(aggregator) == 3


def test_the_aggregators_send_queues_the_event_and_a_muted_signal_queues_nothing(
        aggregator: Aggregator) -> None:
    signal = blinker.signal("yolo.handoff_completed")
    assert "send" in vars(signal)  # the aggregator's own send, not blinker's dispatch
    assert signal.send(None, from_agent="pm", to_agent="dev", duration_s=0.1) == [
        (aggregator._receivers["yolo.handoff_completed"], None)]
    assert len(aggregator._queue) == 1
    with signal.muted():
        assert signal.send(None, from_agent="pm", to_agent="dev", duration_s=0.1) == []
    assert handoffs(aggregator) == 1
    aggregator.disconnect()
    assert "send" not in vars(signal)


def test_the_sender_that_fills_the_queue_records_it(aggregator: Aggregator) -> None:
    for _ in range(QUEUE_BATCH - 1):
        handoff()
    assert recorded_cells(aggregator) == 0
    handoff()
    assert recorded_cells(aggregator) == 1
    assert aggregator.state.series[cat.HANDOFFS].cells["pm", "dev"].value == QUEUE_BATCH


def test_events_keep_the_time_of_their_send(aggregator: Aggregator,
                                            clock: FakeClock) -> None:
    send("agent_activated", agent="pm")
    clock.advance(30.0)
    send("agent_deactivated", agent="pm")
    clock.advance(40.0)  # both recorded now, 70 s after the activation
    assert aggregator.value(cat.AGENT_ACTIVE_TIME, ("pm",)) == 30.0


def test_a_listener_gets_events_in_line_after_the_queued_ones(
        aggregator: Aggregator) -> None:
    seen: list[tuple[str, float]] = []
    handoff(0.1)
    handoff(0.2)
    aggregator.add_listener(lambda name, fields, ts: seen.append(
        (name, handoffs(aggregator))))
    assert recorded_cells(aggregator) == 1  # the queue was recorded first
    handoff(0.3)
    # in line: recorded before the listener saw it, and the listener saw only it
    assert seen == [("yolo.handoff_completed", 3.0)]


def test_disconnect_records_the_queue(clock: FakeClock) -> None:
    aggregator = Aggregator(clock=clock)
    aggregator.connect()
    handoff()
    aggregator.disconnect()
    assert recorded_cells(aggregator) == 1
    handoff()  # not connected: never recorded
    assert handoffs(aggregator) == 1


def test_a_forked_child_forgets_the_parents_queue(aggregator: Aggregator) -> None:
    handoff()
    aggregator.renew_locks()  # what a forked child does first
    assert handoffs(aggregator) == 0


def test_invalid_queued_events_are_counted_when_recorded(aggregator: Aggregator) -> None:
    handoff(-1.0)
    handoff(0.5)
    assert aggregator.invalid_events() == {("yolo.handoff_completed", "duration_s:negative"): 1}
    assert handoffs(aggregator) == 1


def test_an_interrupt_while_recording_reaches_the_caller_and_is_counted(
        clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = FAST_PATHS["yolo.handoff_completed"]

    def interrupted(state: Any, fields: dict, ts: float | None, now: float) -> bool:
        if fields["duration_s"] == 0.25:
            raise KeyboardInterrupt  # as a Ctrl-C landing in the middle of it would
        return recorded(state, fields, ts, now)

    monkeypatch.setitem(FAST_PATHS, "yolo.handoff_completed", interrupted)
    aggregator = Aggregator(clock=clock)
    aggregator.connect()
    try:
        handoff()
        handoff(0.25)
        handoff()
        with pytest.raises(KeyboardInterrupt):
            aggregator.run_pending()
        assert aggregator._guard.lock.acquire(blocking=False)  # no lock survives it
        aggregator._guard.lock.release()
        # the event after it stayed queued and is recorded by the next read
        assert handoffs(aggregator) == 2
        assert aggregator.value(cat.DROPPED, ("aggregator", "interrupted")) == 1
    finally:
        aggregator.disconnect()
