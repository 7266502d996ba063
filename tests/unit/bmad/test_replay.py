"""A recorded sprint (tests/unit/bmad/fixtures/sprint/NN.yaml, successive versions of a
sprint-status.yaml in BMAD's generated format) replayed into a project directory: the
signals at each step, and the metrics at a real scrape of /metrics."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from telemetry.bmad import BmadWatcher
from telemetry.runtime import Telemetry
from tests.adapters.support import sample
from tests.unit.bmad.support import (
    SNAPSHOTS,
    SPRINT_STATUS,
    Clock,
    recorded_signals,
    write_in_place,
)

STEP_S = 60.0


def _scrape(tel: Telemetry) -> str:
    with urllib.request.urlopen(f"{tel.url}/metrics", timeout=10) as response:
        return response.read().decode()


def _replay(tmp_path: Path, tel: Telemetry) -> tuple[BmadWatcher, list[list[tuple]]]:
    """Each snapshot written in place and polled once, STEP_S apart; the signals of each."""
    clock = Clock()
    watcher = BmadWatcher(tmp_path, clock=clock, count_dropped=tel.aggregator.count_dropped)
    steps = []
    with recorded_signals() as events:
        for snapshot in SNAPSHOTS:
            write_in_place(tmp_path / SPRINT_STATUS, snapshot.read_text())
            clock.now += STEP_S
            before = len(events)
            watcher.poll()
            steps.append([(name, fields) for name, fields in events[before:]])
    return watcher, steps


def _names(step: list[tuple]) -> list[tuple]:
    """The step's signals with the fields that identify them."""
    keys = ("agent", "from_agent", "to_agent", "decision_type", "workflow_id", "mode", "rule")
    return [(name.removeprefix("yolo."), *(fields[key] for key in keys if key in fields))
            for name, fields in step]


def test_each_step_sends_the_signals_of_its_transitions(tmp_path: Path,
                                                        start_telemetry) -> None:
    watcher, steps = _replay(tmp_path, start_telemetry())
    story = "1-1-user-authentication"
    assert _names(steps[0]) == [("mode_changed", "active")]  # the baseline: nothing moves
    assert _names(steps[1]) == [("decision_made", "sm", "story_ready_for_dev", story)]
    assert _names(steps[2]) == [
        ("workflow_started", "epic-1"),
        ("decision_made", "dev", "story_in_progress", story),
        ("handoff_completed", "sm", "dev", story),
        ("agent_activated", "dev")]
    assert _names(steps[3])[:4] == [
        ("decision_made", "dev", "story_review", story),
        ("handoff_completed", "dev", "qa", story),
        ("agent_deactivated", "dev"),
        ("agent_activated", "qa")]
    assert _names(steps[4]) == [  # the bounce: a handoff back, and qa's decision
        ("decision_made", "qa", "review_bounced", story),
        ("handoff_completed", "qa", "dev", story),
        ("agent_deactivated", "qa"),
        ("agent_activated", "dev")]
    assert steps[7] == []  # the partial write: nothing sent, read again next poll
    assert ("safety_blocked", "sm", "1-3-plant-data-model", "story_blocked") in _names(steps[8])
    assert ("mode_changed", "degraded") in _names(steps[8])
    assert steps[9] == []  # an unknown state: counted, nothing sent
    assert ("decision_made", "sm", "story_unblocked", "1-3-plant-data-model") \
        in _names(steps[10])
    assert ("mode_changed", "active") in _names(steps[10])
    completed = [fields for name, fields in steps[13] if name == "yolo.workflow_completed"]
    assert completed == [{"workflow_id": "epic-1", "duration_s": 11 * STEP_S}]
    assert watcher.counts.unreadable == 1 and watcher.counts.unknown_state == 1
    assert watcher.counts.exception == 0 and watcher.emitter.failures == 0


def test_the_sprint_shows_in_the_metrics(tmp_path: Path, start_telemetry) -> None:
    tel = start_telemetry()
    _replay(tmp_path, tel)
    metrics = _scrape(tel)

    def handoffs(source: str, target: str) -> float:
        return sample(metrics, "yolo_handoffs_total", from_agent=source, to_agent=target)

    assert (handoffs("sm", "dev"), handoffs("dev", "qa"), handoffs("qa", "dev")) == (3, 4, 1)
    assert sample(metrics, "yolo_handoff_loops_total", agent="dev") == 1  # the bounce
    assert sample(metrics, "yolo_handoff_loops_total", agent="qa") == 1  # and back to review
    decisions = {(agent, kind): sample(metrics, "yolo_decisions_total", agent=agent,
                                       decision_type=kind)
                 for agent, kind in [("sm", "story_ready_for_dev"), ("sm", "story_unblocked"),
                                     ("dev", "story_in_progress"), ("dev", "story_review"),
                                     ("qa", "review_bounced"), ("qa", "story_done"),
                                     ("sm", "retrospective_done")]}
    assert decisions == {("sm", "story_ready_for_dev"): 3, ("sm", "story_unblocked"): 1,
                         ("dev", "story_in_progress"): 3, ("dev", "story_review"): 4,
                         ("qa", "review_bounced"): 1, ("qa", "story_done"): 3,
                         ("sm", "retrospective_done"): 1}
    assert sample(metrics, "yolo_safety_blocks_total", agent="sm", rule="story_blocked") == 1
    assert sample(metrics, "yolo_workflows_total", outcome="completed") == 1
    assert sample(metrics, "yolo_workflow_duration_seconds_sum", outcome="completed") \
        == 11 * STEP_S
    assert sample(metrics, "yolo_agents_active") == 0
    assert sample(metrics, "yolo_mode", mode="active") == 1
    assert sample(metrics, "yolo_telemetry_dropped_total", component="adapter_bmad",
                  reason="unreadable") == 1
    assert sample(metrics, "yolo_telemetry_dropped_total", component="adapter_bmad",
                  reason="unknown_state") == 1
    assert sample(metrics, "yolo_telemetry_invalid_events_total") == 0
