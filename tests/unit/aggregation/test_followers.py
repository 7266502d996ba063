"""Followers (the tracer's shape): their handlers run after each event's metrics update,
under the aggregator's lock, in the order events were sent, wherever the events are
recorded; their send handlers run on the sending thread when an event is sent; the
span current at a send is what that event's exemplars link to."""

from __future__ import annotations

import threading
from typing import Any

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.receiver import QUEUE_BATCH
from tests.conftest import FakeClock, send


class Recorder:
    """A follower that notes what it is given, and whether the aggregator's lock was
    held and the event's metrics recorded when it was."""

    in_line = frozenset({"yolo.error_occurred"})

    def __init__(self, aggregator: Aggregator, wait_limit: int = QUEUE_BATCH) -> None:
        self.aggregator = aggregator
        self.wait_limit = wait_limit
        self.seen: list[tuple[str, Any, bool]] = []
        self.sent: list[tuple[str, Any, bool]] = []
        self.current: tuple[int, int] | None = None
        self.follower_handlers = {
            "yolo.handoff_completed": self._noting("handoff", "duration_s"),
            "yolo.agent_deactivated": self._noting("deactivated", "agent"),
            "yolo.error_occurred": self._noting("error", "error_type"),
        }
        self.send_handlers = {"yolo.agent_activated": self._activated}

    def _noting(self, kind: str, key: str) -> Any:
        def handler(fields: dict[str, Any], ts: float) -> None:
            held = self.aggregator._guard.held_here()
            self.seen.append((kind, fields[key], held))
        return handler

    def _activated(self, fields: dict[str, Any], ts: float) -> None:
        held = self.aggregator._guard.held_here()
        self.sent.append(("activated", fields["agent"], held))

    def span_ids(self) -> tuple[int, int] | None:
        return self.current

    def before_events(self) -> None:
        pass


def handoff(duration_s: float) -> None:
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=duration_s)


def test_handlers_run_in_order_under_the_lock_after_the_metrics(
        aggregator: Aggregator) -> None:
    follower = Recorder(aggregator)
    aggregator.follow(follower)
    handoff(0.1)
    handoff(0.2)
    assert follower.seen == []  # queued with the metrics
    assert aggregator.value(cat.HANDOFFS, ("pm", "dev")) == 2
    assert follower.seen == [("handoff", 0.1, True), ("handoff", 0.2, True)]


def test_an_in_line_signal_is_followed_after_the_queued_ones(aggregator: Aggregator) -> None:
    follower = Recorder(aggregator)
    aggregator.follow(follower)
    handoff(0.1)
    send("error_occurred", agent="pm", error_type="Timeout")
    assert [kind for kind, _, _ in follower.seen] == ["handoff", "error"]


def test_a_send_handler_runs_when_sent_under_the_lock_before_the_queue_is_recorded(
        aggregator: Aggregator) -> None:
    follower = Recorder(aggregator)
    aggregator.follow(follower)
    handoff(0.1)
    send("agent_activated", agent="pm")
    assert follower.sent == [("activated", "pm", True)]
    assert follower.seen == []  # the handoff sent before it still waits
    send("agent_deactivated", agent="pm")
    aggregator.run_pending()
    assert [kind for kind, _, _ in follower.seen] == ["handoff", "deactivated"]


def test_a_send_handler_sees_only_events_that_will_be_accepted(
        aggregator: Aggregator) -> None:
    follower = Recorder(aggregator)
    aggregator.follow(follower)
    send("agent_activated", agent="")  # invalid: counted when recorded, never followed
    assert follower.sent == []
    assert aggregator.invalid_events()[("yolo.agent_activated", "agent:empty")] == 1


def test_a_failing_handler_is_counted_and_the_rest_still_run(aggregator: Aggregator) -> None:
    follower = Recorder(aggregator)

    def fail(fields: dict[str, Any], ts: float) -> None:
        raise RuntimeError("a follower bug")

    follower.follower_handlers["yolo.handoff_completed"] = fail
    aggregator.follow(follower)
    handoff(0.1)
    send("agent_deactivated", agent="pm")
    assert aggregator.value(cat.DROPPED, ("listener", "exception")) == 1
    assert [kind for kind, _, _ in follower.seen] == ["deactivated"]


def test_exemplars_link_to_the_span_current_at_the_send(clock: FakeClock) -> None:
    aggregator = Aggregator(clock=clock)
    aggregator.connect()
    follower = Recorder(aggregator)
    aggregator.follow(follower)
    aggregator.histogram_features(exemplars=True)
    try:
        follower.current = (7, 8)
        handoff(0.3)
        follower.current = None  # changed before the queue is recorded
        recorded = threading.Thread(target=aggregator.run_pending)  # on another thread
        recorded.start()
        recorded.join()
        cell = aggregator.state.series[cat.HANDOFF_DURATION].cells["pm", "dev"]
        kept = [e for e in cell.exemplars if e is not None]
        assert [(value, trace, span) for value, _, trace, span in kept] == [(0.3, 7, 8)]
        handoff(0.31)  # sent with no span current: the bucket keeps the last one linked
        aggregator.run_pending()
        assert [e for e in cell.exemplars if e is not None] == kept
    finally:
        aggregator.unfollow(follower)
        aggregator.disconnect()


def test_unfollow_follows_the_queued_events_first(aggregator: Aggregator) -> None:
    follower = Recorder(aggregator)
    aggregator.follow(follower)
    handoff(0.1)
    aggregator.unfollow(follower)
    handoff(0.2)
    assert aggregator.value(cat.HANDOFFS, ("pm", "dev")) == 2
    assert follower.seen == [("handoff", 0.1, True)]


def test_a_follower_that_cannot_wait_has_every_event_recorded_in_line(
        aggregator: Aggregator) -> None:
    follower = Recorder(aggregator, wait_limit=0)
    aggregator.follow(follower)
    handoff(0.1)
    assert follower.seen == [("handoff", 0.1, True)]
    send("agent_activated", agent="pm")
    assert follower.sent == [("activated", "pm", True)]
