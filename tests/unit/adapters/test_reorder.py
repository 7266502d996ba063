"""The reorder buffer adapters put between a framework that delivers events out of
order (CrewAI's thread pool) and our signals: timestamp order, a watermark, a bound."""

from __future__ import annotations

import threading

from telemetry.adapters.reorder import ReorderBuffer
from tests.conftest import FakeClock


def buffer(clock: FakeClock, **options) -> tuple[ReorderBuffer, list]:
    out: list = []
    return ReorderBuffer(out.append, clock=clock, timer=False, **options), out


def test_events_leave_in_timestamp_order_once_the_watermark_passes_them():
    clock = FakeClock(100.0)
    buf, out = buffer(clock, delay_s=1.0)
    for ts, name in [(99.5, "c"), (99.2, "a"), (99.4, "b")]:
        buf.push(ts, name)
    assert out == [] and len(buf) == 3
    clock.advance(0.3)   # watermark 99.3
    buf.push(99.9, "d")
    assert out == ["a"]
    clock.advance(1.0)   # watermark 100.3
    buf.push(100.2, "e")
    assert out == ["a", "b", "c", "d", "e"]


def test_release_all_and_the_tie_break():
    buf, out = buffer(FakeClock(0.0), delay_s=60)
    buf.push(5.0, "second", tie=2)
    buf.push(5.0, "first", tie=1)
    buf.push(4.0, "zeroth")
    buf.release_all()
    assert out == ["zeroth", "first", "second"]


def test_a_late_event_goes_on_at_once_and_is_counted():
    buf, out = buffer(FakeClock(0.0), delay_s=60)
    buf.push(5.0, "x")
    buf.release_all()
    buf.push(4.0, "late")
    assert out == ["x", "late"] and buf.late == 1 and len(buf) == 0


def test_memory_is_bounded_by_releasing_the_oldest():
    buf, out = buffer(FakeClock(0.0), delay_s=60, capacity=3)
    for ts in (4.0, 1.0, 3.0, 2.0, 5.0):
        buf.push(ts, ts)
    assert len(buf) == 3 and out == [1.0, 2.0]


def test_close_hands_on_everything_and_takes_nothing_more():
    buf, out = buffer(FakeClock(0.0), delay_s=60)
    buf.push(2.0, "b")
    buf.push(1.0, "a")
    buf.close()
    buf.push(3.0, "c")
    assert out == ["a", "b"] and buf.closed


def test_the_timer_releases_events_when_nothing_else_arrives():
    released = threading.Event()
    clock = FakeClock(100.0)
    buf = ReorderBuffer(lambda item: released.set(), delay_s=0.05, clock=clock)
    buf.push(100.0, "only")
    clock.advance(1.0)
    assert released.wait(5)
    buf.close()
