"""Re-entry from the sending thread, a field named ``sender``, the timestamp window and
number subclasses that lie: the per-event path's edges."""

from __future__ import annotations

import threading
import time

import blinker
import pytest

from telemetry import catalogue as cat
from telemetry.aggregation import reentry
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.reentry import (
    MAX_PENDING,
    STRANDED_S,
    EventGuard,
    held_by_this_thread,
)
from telemetry.signals import COMMON_OPTIONAL, CONTRACT
from tests.conftest import send


def test_a_field_named_sender_with_a_second_receiver_connected_does_not_raise(
        aggregator: Aggregator) -> None:
    """blinker calls every receiver as ``receiver(sender, **fields)``: with a second
    receiver the aggregator is called that way too, and ``sender`` is a field."""
    seen = []

    def other(sender, /, **fields):
        seen.append(fields["sender"])

    signal = blinker.signal("yolo.handoff_completed")
    signal.connect(other, weak=False)
    try:
        signal.send("orchestrator", from_agent="pm", to_agent="dev", duration_s=0.5,
                    sender="pm-process")
    finally:
        signal.disconnect(other)
    assert seen == ["pm-process"]
    assert aggregator.value(cat.HANDOFFS, ("pm", "dev")) == 1


def test_timestamps_outside_the_window_are_invalid(aggregator: Aggregator) -> None:
    now = time.time()
    for stamp in (2.0**53, now + 2 * 86_400, now - 2 * 86_400, 1.0):
        send("agent_activated", agent="pm", timestamp=stamp)
        send("agent_deactivated", agent="pm", timestamp=stamp + 1)
    assert aggregator.invalid_events() == {
        ("yolo.agent_activated", "timestamp:out_of_range"): 4,
        ("yolo.agent_deactivated", "timestamp:out_of_range"): 4}
    send("agent_activated", agent="pm", timestamp=now - 60)
    send("agent_deactivated", agent="pm", timestamp=now - 30)
    assert aggregator.snapshot()[0].agent_active_time == {"pm": pytest.approx(30.0)}


def test_the_window_is_configurable() -> None:
    agg = Aggregator(timestamp_window_s=10.0)
    agg.connect()
    try:
        send("safety_blocked", agent="a", rule="r", timestamp=time.time() - 5)
        send("safety_blocked", agent="a", rule="r", timestamp=time.time() - 50)
    finally:
        agg.disconnect()
    assert agg.value(cat.SAFETY_BLOCKS, ("a", "r")) == 1
    assert agg.invalid_events() == {("yolo.safety_blocked", "timestamp:out_of_range"): 1}


class LyingFloat(float):
    """Says it is neither negative nor out of range, whatever it holds."""

    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return True

    def __ge__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return False


class LyingInt(int):
    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return True

    def __ge__(self, other: object) -> bool:
        return True


class LyingStr(str):
    def strip(self, *args: object) -> str:
        return "not empty"

    def isspace(self) -> bool:
        return False


def test_number_subclasses_that_lie_are_checked_by_their_value(
        aggregator: Aggregator) -> None:
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=LyingFloat(-5.0))
    send("decision_made", agent="pm", decision_type="x", duration_s=LyingFloat(-1.0))
    send("context_updated", agent="pm", items=LyingInt(-3), tokens=1)
    send("state_saved", duration_s=0.1, size_bytes=LyingInt(-1))
    send("agent_activated", agent="pm", timestamp=LyingFloat(-1.0))
    send("safety_blocked", agent=LyingStr("   "), rule="r")
    assert aggregator.invalid_events() == {
        ("yolo.handoff_completed", "duration_s:negative"): 1,
        ("yolo.decision_made", "duration_s:negative"): 1,
        ("yolo.context_updated", "items:negative"): 1,
        ("yolo.state_saved", "size_bytes:negative"): 1,
        ("yolo.agent_activated", "timestamp:negative"): 1,
        ("yolo.safety_blocked", "agent:empty"): 1}
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=LyingFloat(0.5))
    agent, _ = aggregator.snapshot()
    assert agent.handoff_duration.sum == 0.5 and agent.handoff_duration.count == 1


@pytest.mark.parametrize("spec", CONTRACT, ids=lambda spec: spec.name)
@pytest.mark.parametrize("field", sorted(COMMON_OPTIONAL))
def test_every_signal_checks_the_fields_every_signal_accepts(
        aggregator: Aggregator, spec, field: str) -> None:
    blinker.signal(spec.name).send(None, **{field: []})
    assert (spec.name, f"{field}:wrong_type") in aggregator.invalid_events()


def test_an_event_sent_from_inside_the_lock_is_recorded_right_after(
        aggregator: Aggregator) -> None:
    """What a signal handler or finalizer does mid-update, played by a listener that
    takes the aggregator's lock the way an interrupted update holds it."""
    def listener(name, fields, ts):
        if name == "yolo.handoff_completed":
            with aggregator._lock:
                send("safety_blocked", agent="inner", rule="r")
                aggregator.count_dropped("test", "inner")
                assert aggregator.value(cat.SAFETY_BLOCKS, ("inner", "r")) == 0  # not yet
                assert aggregator.take_timer_samples() == []  # touches nothing
                assert aggregator.collect([cat.HANDOFFS])  # reads without waiting

    aggregator.add_listener(listener)
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.5)
    assert aggregator.value(cat.SAFETY_BLOCKS, ("inner", "r")) == 1
    assert aggregator.value(cat.DROPPED, ("test", "inner")) == 1
    assert not aggregator._guard.pending


def test_deferred_work_is_bounded_and_the_excess_counted() -> None:
    guard = EventGuard()
    with guard.lock:
        assert held_by_this_thread() is not None
        for _ in range(MAX_PENDING + 5):
            guard.defer(lambda: None)
    assert len(guard.pending) == MAX_PENDING and guard.dropped == 5
    guard.run_pending()
    assert not guard.pending


def test_another_threads_deferred_work_waits_for_that_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop deferred by a signal handler must run after the update it interrupted,
    on that thread, not on whichever thread comes along first: not even once it has
    waited long (STRANDED_S), while that thread still holds the lock."""
    monkeypatch.setattr(reentry, "STRANDED_S", 0.0)
    guard, ran = EventGuard(), []
    deferred, release = threading.Event(), threading.Event()

    def owner() -> None:
        with guard.lock:
            guard.defer(lambda: ran.append(threading.current_thread().name))
            deferred.set()
            release.wait(10)
        guard.run_pending()

    thread = threading.Thread(target=owner, name="owner")
    thread.start()
    assert deferred.wait(10)
    guard.run_pending()  # another thread: leaves it
    assert ran == []
    release.set()
    thread.join(10)
    assert ran == ["owner"]


def test_work_deferred_inside_a_read_runs_as_the_read_returns(
        aggregator: Aggregator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A finalizer that counts while an exporter's or the alert evaluator's thread
    reads is deferred (the read holds the lock); it runs as that read returns, on that
    thread, not at its next read (perhaps an evaluation interval later). Played by a
    label whose hash runs inside the read's hold."""
    monkeypatch.setattr(reentry, "STRANDED_S", 3600.0)  # no other thread may run it
    ran_on = []
    read, checked = threading.Event(), threading.Event()

    class Finalizing(str):
        def __hash__(self) -> int:
            aggregator.count_dropped("test", "in_read")
            ran_on.append(threading.current_thread().name)
            return str.__hash__(self)

    def reader() -> None:
        aggregator.value(cat.HANDOFFS, (Finalizing("pm"), "dev"))
        read.set()
        checked.wait(10)

    thread = threading.Thread(target=reader, name="reader")
    thread.start()
    try:
        assert read.wait(10)
        assert ran_on == ["reader"]
        assert aggregator.value(cat.DROPPED, ("test", "in_read")) == 1
        assert not aggregator._guard.pending
    finally:
        checked.set()
        thread.join(10)


def test_work_left_by_an_unwound_frame_runs_at_any_threads_call(
        aggregator: Aggregator) -> None:
    """Work deferred under a hold whose frame does not run the queue after it (an
    interrupt unwound it) waits for its own thread; once it has waited STRANDED_S and
    no thread holds the lock, any thread's call runs it, while its thread lives on."""
    held, checked = threading.Event(), threading.Event()

    def holder() -> None:
        with aggregator._lock:  # not a decorated read: nothing runs the queue after
            aggregator.count_dropped("test", "stranded")
        held.set()
        checked.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        deadline = time.monotonic() + 10 * STRANDED_S + 5
        while (aggregator.value(cat.DROPPED, ("test", "stranded")) != 1
               and time.monotonic() < deadline):
            time.sleep(STRANDED_S / 10)
        assert aggregator.value(cat.DROPPED, ("test", "stranded")) == 1
        assert not aggregator._guard.pending
    finally:
        checked.set()
        thread.join(10)
