"""The aggregator: every signal updates the right fields, bad input is counted, nothing
raises into the sender, concurrency loses no update, windows expire on time."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import blinker
import pytest

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.snapshot import agent_totals
from telemetry.signals import CONTRACT
from tests.conftest import FakeClock, send

#: A whole second an hour ago: within the accepted timestamp window of now.
T0 = float(int(time.time()) - 3600)


def test_handoff_updates_counter_histogram_and_snapshot(aggregator: Aggregator) -> None:
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.3)
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.7)
    send("handoff_completed", from_agent="dev", to_agent="qa", duration_s=2.0)

    agent, _ = aggregator.snapshot()
    assert agent.handoffs_total == 3
    assert agent.handoffs_by_pair == {("pm", "dev"): 2, ("dev", "qa"): 1}
    assert agent.handoff_duration.count == 3
    assert agent.handoff_duration.sum == pytest.approx(3.0)
    assert aggregator.value(cat.HANDOFFS, ("pm", "dev")) == 2


def test_decisions_errors_blocks_and_context(aggregator: Aggregator) -> None:
    send("decision_made", agent="pm", decision_type="scope", duration_s=0.2)
    send("decision_made", agent="pm", decision_type="scope", duration_s=0.4)
    send("decision_made", agent="dev", decision_type="refactor", duration_s=1.0)
    send("error_occurred", agent="dev", error_type="ToolTimeout", exception=TimeoutError("x"))
    send("safety_blocked", agent="dev", rule="no_destructive_shell")
    send("context_updated", agent="pm", items=3, tokens=1200)
    send("context_updated", agent="pm", items=5, tokens=2000)  # a gauge: the last value wins
    send("context_updated", agent="dev", items=1, tokens=300)
    send("context_refreshed", agent="pm", duration_s=0.5)

    agent, _ = aggregator.snapshot()
    assert agent.decisions_made == 3
    assert agent.decisions_by_agent == {"pm": 2, "dev": 1}
    assert agent.decision_duration.count == 3
    assert agent.errors_total == 1
    assert agent.errors_by_agent == {"dev": 1}
    assert agent.safety_blocks == 1
    assert agent.safety_blocks_by_rule == {"no_destructive_shell": 1}
    assert agent.context_tokens_by_agent == {"pm": 2000, "dev": 300}
    assert agent.context_tokens_used == 2300
    assert agent.context_items_total == 6
    assert agent.context_refresh_duration.count == 1
    # dev: 1 decision + 1 error = 2 operations, 1 of them an error
    assert agent.agent_error_rate["dev"] == pytest.approx(0.5)
    assert agent.agent_error_rate["pm"] == 0.0
    assert agent.errors_last_hour == 1


def test_agent_activation_tracks_active_set_and_time(aggregator: Aggregator) -> None:
    send("agent_activated", agent="pm", timestamp=T0 + 100.0)
    send("agent_activated", agent="dev", timestamp=T0 + 101.0)
    agent, _ = aggregator.snapshot()
    assert agent.current_agents_active == 2
    assert agent.current_agent == "dev"

    send("agent_deactivated", agent="dev", timestamp=T0 + 104.5)
    agent, _ = aggregator.snapshot()
    assert agent.current_agents_active == 1
    assert agent.current_agent == "pm"
    assert agent.agent_active_time == {"dev": pytest.approx(3.5)}
    assert aggregator.value(cat.AGENTS_ACTIVE) == 1


def test_workflows_state_and_mode(aggregator: Aggregator) -> None:
    send("workflow_started", workflow_id="w1", workflow_type="greenfield")
    send("workflow_started", workflow_id="w2")
    send("workflow_completed", workflow_id="w1", duration_s=10.0)
    send("workflow_failed", workflow_id="w2", duration_s=30.0, error_type="Timeout")
    send("state_saved", duration_s=0.01, size_bytes=2048)
    send("state_saved", duration_s=0.02, size_bytes=4096)
    send("state_loaded", duration_s=0.005, size_bytes=4096)
    send("mode_changed", mode="paused")

    _, system = aggregator.snapshot()
    assert system.workflows_started == 2
    assert system.workflows_completed == 1
    assert system.workflows_failed == 1
    assert system.average_workflow_time == pytest.approx(20.0)
    assert system.state_saves_total == 2
    assert system.state_loads_total == 1
    assert system.state_load_time_ms == pytest.approx(5.0)
    assert system.state_file_size_bytes == 4096
    assert system.mode == "paused"
    assert aggregator.value(cat.MODE, ("paused",)) == 1
    assert aggregator.value(cat.MODE, ("active",)) == 0
    assert system.events_total == 8


def test_every_signal_of_the_contract_is_handled(aggregator: Aggregator) -> None:
    valid = {"name": "x", "duration": 1.0, "count": 3, "mode": "degraded", "exception": None}
    for spec in CONTRACT:
        fields = {key: valid[kind] for key, kind in spec.required.items()}
        spec.signal.send(None, **fields)
    _, system = aggregator.snapshot()
    assert system.events_total == len(CONTRACT) == 18
    assert system.invalid_events_total == 0


INVALID_PAYLOADS = [
    ("handoff_completed", {"to_agent": "dev", "duration_s": 1.0}, "from_agent:missing"),
    ("handoff_completed", {"from_agent": 7, "to_agent": "dev", "duration_s": 1.0},
     "from_agent:wrong_type"),
    ("handoff_completed", {"from_agent": "  ", "to_agent": "dev", "duration_s": 1.0},
     "from_agent:empty"),
    ("handoff_completed", {"from_agent": "pm", "to_agent": "dev", "duration_s": -1.0},
     "duration_s:negative"),
    ("handoff_completed", {"from_agent": "pm", "to_agent": "dev", "duration_s": math.nan},
     "duration_s:not_finite"),
    ("handoff_completed", {"from_agent": "pm", "to_agent": "dev", "duration_s": math.inf},
     "duration_s:not_finite"),
    ("handoff_completed", {"from_agent": "pm", "to_agent": "dev", "duration_s": "1.0"},
     "duration_s:wrong_type"),
    ("handoff_completed", {"from_agent": "pm", "to_agent": "dev", "duration_s": True},
     "duration_s:wrong_type"),
    ("decision_made", {"agent": "pm", "decision_type": "x", "duration_s": 10**400},
     "duration_s:out_of_range"),
    ("context_updated", {"agent": "pm", "items": 1.5, "tokens": 3}, "items:not_integer"),
    ("context_updated", {"agent": "pm", "items": 1, "tokens": None}, "tokens:missing"),
    ("mode_changed", {"mode": "sideways"}, "mode:unknown"),
    ("error_occurred", {"agent": "pm", "error_type": "X", "exception": "boom"},
     "exception:wrong_type"),
    ("safety_blocked", {"agent": "pm", "rule": "r", "timestamp": -5}, "timestamp:negative"),
    ("safety_blocked", {"agent": "pm", "rule": "r", "workflow_id": 12},
     "workflow_id:wrong_type"),
]


@pytest.mark.parametrize(("signal", "fields", "reason"), INVALID_PAYLOADS)
def test_invalid_payload_is_dropped_counted_and_never_raises(
    aggregator: Aggregator, signal: str, fields: dict, reason: str
) -> None:
    send(signal, **fields)  # must not raise
    assert aggregator.invalid_events() == {(f"yolo.{signal}", reason): 1}
    _, system = aggregator.snapshot()
    assert system.events_total == 0
    agent, _ = aggregator.snapshot()
    assert agent.handoffs_total == agent.decisions_made == 0


KNOWN_LABELS_THEN_INVALID = [
    ("handoff_completed", {"from_agent": "pm", "to_agent": "dev", "duration_s": -1.0},
     "duration_s:negative"),
    ("handoff_completed", {"from_agent": "pm", "to_agent": "dev"}, "duration_s:missing"),
    ("handoff_completed", {"from_agent": ["pm"], "to_agent": "dev", "duration_s": 1.0},
     "from_agent:wrong_type"),
    ("decision_made", {"agent": "pm", "decision_type": "scope", "duration_s": math.nan},
     "duration_s:not_finite"),
    ("decision_made", {"agent": "pm", "decision_type": {}, "duration_s": 1.0},
     "decision_type:wrong_type"),
    ("context_updated", {"agent": "pm", "items": 3, "tokens": "many"}, "tokens:wrong_type"),
    ("context_updated", {"agent": "pm", "items": -3, "tokens": 10}, "items:negative"),
    ("state_saved", {"duration_s": 0.1, "size_bytes": 1.5}, "size_bytes:not_integer"),
]


@pytest.mark.parametrize(("signal", "fields", "reason"), KNOWN_LABELS_THEN_INVALID)
def test_invalid_payload_for_known_labels_changes_nothing(
    aggregator: Aggregator, signal: str, fields: dict, reason: str
) -> None:
    """Label sets seen before skip the name checks; the other fields are still checked
    before anything is updated."""
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.5)
    send("decision_made", agent="pm", decision_type="scope", duration_s=0.5)
    send("context_updated", agent="pm", items=2, tokens=20)
    send("state_saved", duration_s=0.1, size_bytes=100)
    before = aggregator.snapshot()
    send(signal, **fields)
    after = aggregator.snapshot()
    assert aggregator.invalid_events() == {(f"yolo.{signal}", reason): 1}
    assert after[0] == before[0]
    assert (after[1].state_saves_total, after[1].state_file_size_bytes) == (1, 100)


def test_invalid_events_are_logged_once_per_signal_and_reason(
    aggregator: Aggregator, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(5):
        send("state_saved", duration_s=-1, size_bytes=1)
    send("state_saved", duration_s=1, size_bytes=-1)
    aggregator.run_pending()  # queued events are checked when they are recorded
    warnings = [r for r in caplog.records if r.name == "telemetry.aggregator"]
    assert len(warnings) == 2
    assert aggregator.invalid_events() == {("yolo.state_saved", "duration_s:negative"): 5,
                                           ("yolo.state_saved", "size_bytes:negative"): 1}


def test_unknown_fields_are_ignored(aggregator: Aggregator) -> None:
    send("safety_blocked", agent="dev", rule="r", prompt="secret text", extra={"a": 1})
    agent, _ = aggregator.snapshot()
    assert agent.safety_blocks == 1


def test_a_failing_listener_never_reaches_the_sender(aggregator: Aggregator) -> None:
    seen = []

    def broken(signal_name: str, fields: dict, timestamp: float) -> None:
        seen.append(signal_name)
        raise RuntimeError("listener bug")

    aggregator.add_listener(broken)
    send("safety_blocked", agent="dev", rule="r")
    send("safety_blocked", agent="dev", rule="r")
    assert seen == ["yolo.safety_blocked"] * 2
    assert aggregator.value(cat.DROPPED, ("listener", "exception")) == 2
    assert aggregator.snapshot()[0].safety_blocks == 2


def test_listeners_get_the_event_timestamp(aggregator: Aggregator) -> None:
    got = []
    aggregator.add_listener(lambda name, fields, ts: got.append((name, ts)))
    send("agent_activated", agent="pm", timestamp=T0 + 1234.5)
    send("agent_activated", agent="pm", timestamp="yesterday")  # invalid: not passed on
    assert got == [("yolo.agent_activated", T0 + 1234.5)]


def test_receivers_are_held_strongly() -> None:
    import gc

    agg = Aggregator()
    agg.connect()
    try:
        gc.collect()
        send("safety_blocked", agent="a", rule="r")
        assert agg.snapshot()[0].safety_blocks == 1
    finally:
        agg.disconnect()
    send("safety_blocked", agent="a", rule="r")
    assert agg.snapshot()[0].safety_blocks == 1


def test_eight_threads_lose_no_update() -> None:
    agg = Aggregator()
    agg.connect()
    threads_n, per_thread = 8, 100_000
    barrier = threading.Barrier(threads_n)
    handoff = blinker.signal("yolo.handoff_completed")

    def sender(index: int) -> None:
        barrier.wait()
        agent = f"agent{index % 3}"
        for _ in range(per_thread):
            handoff.send(None, from_agent=agent, to_agent="qa", duration_s=0.1)

    try:
        threads = [threading.Thread(target=sender, args=(i,)) for i in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        agent, system = agg.snapshot()
    finally:
        agg.disconnect()
    assert agent.handoffs_total == threads_n * per_thread
    assert agent.handoff_duration.count == threads_n * per_thread
    assert system.events_total == threads_n * per_thread


def test_asyncio_tasks_and_threads_together_lose_no_update(aggregator: Aggregator) -> None:
    async def task(n: int) -> None:
        for i in range(n):
            send("decision_made", agent="dev", decision_type="x", duration_s=0.01)
            if i % 100 == 0:
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(task(2_000) for _ in range(10)))

    worker = threading.Thread(target=lambda: [
        send("decision_made", agent="qa", decision_type="y", duration_s=0.01)
        for _ in range(20_000)])
    worker.start()
    asyncio.run(main())
    worker.join(60)
    agent, _ = aggregator.snapshot()
    assert agent.decisions_by_agent == {"dev": 20_000, "qa": 20_000}


def test_snapshots_are_copies(aggregator: Aggregator) -> None:
    send("context_updated", agent="pm", items=1, tokens=10)
    agent, _ = aggregator.snapshot()
    agent.context_tokens_by_agent["pm"] = 999
    assert aggregator.snapshot()[0].context_tokens_by_agent == {"pm": 10}


def test_error_rate_window_expires_with_the_clock(aggregator: Aggregator,
                                                  clock: FakeClock) -> None:
    # Default window: 300 s in 30 slots of 10 s.
    send("error_occurred", agent="dev", error_type="X")
    send("decision_made", agent="dev", decision_type="d", duration_s=0.1)
    assert aggregator.snapshot()[0].agent_error_rate["dev"] == pytest.approx(0.5)

    clock.advance(200)
    send("decision_made", agent="dev", decision_type="d", duration_s=0.1)
    send("decision_made", agent="dev", decision_type="d", duration_s=0.1)
    assert aggregator.snapshot()[0].agent_error_rate["dev"] == pytest.approx(0.25)

    clock.advance(110)  # the first two events are now 310 s old: out of the window
    assert aggregator.snapshot()[0].agent_error_rate["dev"] == 0.0
    clock.advance(200)  # everything is out
    agent, _ = aggregator.snapshot()
    assert agent.agent_error_rate["dev"] == 0.0
    assert agent.errors_total == 1  # counters are cumulative; only the window moved


def test_errors_last_hour_expires(aggregator: Aggregator, clock: FakeClock) -> None:
    send("error_occurred", agent="dev", error_type="X")
    aggregator.collect([cat.ERRORS])  # a reader records the windows (the alert evaluator)
    clock.advance(1800)
    send("error_occurred", agent="qa", error_type="Y")
    assert aggregator.snapshot()[0].errors_last_hour == 2
    clock.advance(1900)  # the first error is 3700 s old
    assert aggregator.snapshot()[0].errors_last_hour == 1
    clock.advance(3700)
    assert aggregator.snapshot()[0].errors_last_hour == 0


def test_window_is_exact_at_read_resolution(clock: FakeClock) -> None:
    agg = Aggregator(clock=clock, error_rate_window_s=60, window_buckets=6)
    agg.connect()
    try:
        clock.now = 1000.0  # a slot boundary (slots of 10 s)
        send("error_occurred", agent="a", error_type="X")  # t=1000
        agg.collect([cat.ERRORS])  # a read in every slot, as the alert evaluator does
        clock.now = 1010.0
        agg.collect([cat.ERRORS])
        clock.now = 1015.0
        send("error_occurred", agent="a", error_type="X")  # t=1015
        clock.now = 1059.0
        assert agg.snapshot()[0].agent_error_rate["a"] == 1.0
        clock.now = 1061.0  # the event at 1000 left (the record at 1000 is the base)
        rate_window = agg._windows.error_rate.totals(1061.0, agent_totals(agg.state))
        assert rate_window[("errors", "a")] == 1
        clock.now = 1081.0  # no read between 1010 and 1059: the event at 1015 stays
        agg.snapshot()
        assert agg._windows.error_rate.totals(1081.0, agent_totals(agg.state))[("errors", "a")] == 1
        clock.now = 1120.0  # both left: the record at 1059 has them
        agg.snapshot()
        assert agg._windows.error_rate.totals(1120.0, agent_totals(agg.state))[("errors", "a")] == 0
    finally:
        agg.disconnect()


def test_senders_never_record_the_windows(clock: FakeClock) -> None:
    """Recording walks every series: only reads do it, at most once a slot."""
    agg = Aggregator(clock=clock, error_rate_window_s=60, window_buckets=6)
    agg.connect()
    try:
        window = agg._windows.error_rate
        for second in range(0, 120, 5):  # many boundaries pass between events
            clock.now = 2000.0 + second
            send("error_occurred", agent="a", error_type="X")
        assert len(window._records) == 0
        agg.collect([cat.ERRORS])
        agg.collect([cat.ERRORS])  # the same slot: recorded once
        assert len(window._records) == 1
        clock.advance(10)
        agg.collect([cat.ERRORS])
        assert len(window._records) == 2
    finally:
        agg.disconnect()


def test_handler_time_is_sampled_and_positive(aggregator: Aggregator) -> None:
    for _ in range(1000):
        send("safety_blocked", agent="a", rule="r")
    spent = aggregator.value(cat.HANDLER_TIME)
    assert 0 < spent < 1.0  # 1000 events cost microseconds each, far below a second
