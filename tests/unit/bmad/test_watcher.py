"""The watcher on files that misbehave: cut short mid-write, deleted, renamed, replaced,
in states it does not know; and memlogs. Polls are driven by hand: no timing."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from telemetry.bmad import BmadWatcher
from tests.unit.bmad.support import (
    SNAPSHOTS,
    SPRINT_STATUS,
    Clock,
    recorded_signals,
    write_atomically,
    write_in_place,
)


def _watcher(root: Path) -> tuple[BmadWatcher, list[tuple[str, str]]]:
    dropped: list[tuple[str, str]] = []
    return BmadWatcher(root, clock=Clock(),
                       count_dropped=lambda *key: dropped.append(key)), dropped


def _text(number: int) -> str:
    return SNAPSHOTS[number - 1].read_text()


def test_a_file_cut_short_but_still_yaml_is_believed_only_when_it_stays_so(
        tmp_path: Path) -> None:
    path = tmp_path / SPRINT_STATUS
    watcher, _ = _watcher(tmp_path)
    write_in_place(path, _text(2))
    watcher.poll()
    full = _text(3)
    cut = full[: full.index("  1-2-account-management")]  # whole lines: valid YAML
    with recorded_signals() as events:
        write_in_place(path, cut)
        watcher.poll()
        assert events == []  # stories missing: most likely mid-write; not believed yet
        write_in_place(path, full)
        watcher.poll()
    assert [name for name, _ in events] == [
        "yolo.workflow_started", "yolo.decision_made", "yolo.handoff_completed",
        "yolo.agent_activated"]
    assert set(watcher.mapper.state.known.stories) == {
        "1-1-user-authentication", "1-2-account-management", "1-3-plant-data-model",
        "2-1-personality-system", "2-2-chat-interface"}


def test_an_unparsable_version_is_counted_once_and_read_again(tmp_path: Path,
                                                              caplog) -> None:
    path = tmp_path / SPRINT_STATUS
    watcher, dropped = _watcher(tmp_path)
    write_in_place(path, _text(7))
    watcher.poll()
    write_in_place(path, _text(8))  # the recorded partial write
    with caplog.at_level(logging.WARNING, "telemetry.bmad"):
        for _ in range(3):
            watcher.poll()
    assert dropped == [("adapter_bmad", "unreadable")]
    assert len(caplog.records) == 1
    write_in_place(path, _text(9))
    watcher.poll()
    assert watcher.mapper.state.known.stories["1-2-account-management"] == "done"


@pytest.mark.parametrize("text", ["", "development_status: [1, 2]\n", "- a\n- b\n",
                                  "\x00\xff not yaml: [\n"])
def test_text_that_is_no_sprint_status_never_raises(tmp_path: Path, text: str) -> None:
    watcher, dropped = _watcher(tmp_path)
    write_in_place(tmp_path / SPRINT_STATUS, text)
    watcher.poll()
    assert dropped == [("adapter_bmad", "unreadable")]
    assert watcher.counts.exception == 0 and not watcher.mapper.started


def test_a_deleted_file_is_missed_once_and_picked_up_where_it_comes_back(
        tmp_path: Path) -> None:
    path = tmp_path / SPRINT_STATUS
    watcher, dropped = _watcher(tmp_path)
    write_in_place(path, _text(2))
    watcher.poll()
    path.unlink()
    watcher.poll()
    watcher.poll()
    assert dropped == [("adapter_bmad", "file_missing")]
    moved = tmp_path / "docs" / "sprint" / "sprint-status.yaml"  # found by the walk
    with recorded_signals() as events:
        write_in_place(moved, _text(3))
        watcher.poll()
    assert watcher.sprint_status_path == moved
    assert ("yolo.handoff_completed", "sm", "dev") in [
        (name, fields.get("from_agent"), fields.get("to_agent")) for name, fields in events]
    assert dropped == [("adapter_bmad", "file_missing")]


def test_a_renamed_file_is_followed_to_its_new_name(tmp_path: Path) -> None:
    path = tmp_path / SPRINT_STATUS
    watcher, dropped = _watcher(tmp_path)
    write_in_place(path, _text(2))
    watcher.poll()
    renamed = tmp_path / "sprint-status.yaml"
    path.rename(renamed)
    watcher.poll()
    assert watcher.sprint_status_path == renamed
    assert dropped == [("adapter_bmad", "file_missing")]


def test_an_atomic_replace_is_seen(tmp_path: Path) -> None:
    path = tmp_path / SPRINT_STATUS
    watcher, _ = _watcher(tmp_path)
    write_atomically(path, _text(2))
    watcher.poll()
    write_atomically(path, _text(3))
    watcher.poll()
    assert watcher.mapper.state.known.stories["1-1-user-authentication"] == "in-progress"


def test_an_unknown_state_is_counted_once_per_item_and_logged_once(tmp_path: Path,
                                                                   caplog) -> None:
    path = tmp_path / SPRINT_STATUS
    watcher, dropped = _watcher(tmp_path)
    base = _text(2)
    write_in_place(path, base)
    watcher.poll()
    odd = base.replace("1-2-account-management: backlog", "1-2-account-management: parked")
    odd = odd.replace("1-3-plant-data-model: backlog", "1-3-plant-data-model: parked")
    with caplog.at_level(logging.WARNING, "telemetry.bmad"), recorded_signals() as events:
        write_in_place(path, odd)
        watcher.poll()
        write_in_place(path, odd + "\n")
        watcher.poll()
        assert events == []
        # back to a known state: a move from the last known one (backlog)
        write_in_place(path, base.replace("1-2-account-management: backlog",
                                          "1-2-account-management: ready-for-dev"))
        watcher.poll()
    assert dropped == [("adapter_bmad", "unknown_state")] * 2
    assert len(caplog.records) == 1 and "parked" in caplog.text
    assert [(name, fields.get("decision_type")) for name, fields in events] == [
        ("yolo.decision_made", "story_ready_for_dev")]


def test_a_failing_step_is_counted_and_the_watcher_goes_on(tmp_path: Path,
                                                           monkeypatch) -> None:
    watcher, dropped = _watcher(tmp_path)
    write_in_place(tmp_path / SPRINT_STATUS, _text(2))

    def broken(status: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(watcher.mapper, "apply", broken)
    watcher.poll()
    watcher.poll()  # a version that failed is not tried again: it could send twice
    assert dropped == [("adapter_bmad", "exception")]
    write_in_place(tmp_path / SPRINT_STATUS, _text(3))
    watcher.poll()
    assert dropped == [("adapter_bmad", "exception")] * 2
    monkeypatch.undo()
    write_in_place(tmp_path / SPRINT_STATUS, _text(4))
    watcher.poll()
    assert watcher.mapper.started and watcher.counts.polls == 4


MEMLOG = """---
topic: Plant Care PRD
updated: 2026-11-30T09:00
---

- (note) scope: indoor plants only
- (decision by user) web first, mobile later
"""


def test_memlog_entries_become_decisions_blocks_and_context(tmp_path: Path) -> None:
    memlog = tmp_path / "_bmad-output" / "planning-artifacts" / "prd-plant-care" / ".memlog.md"
    write_atomically(memlog, MEMLOG)
    watcher, _ = _watcher(tmp_path)
    with recorded_signals() as events:
        watcher.poll()  # the first read: its entries are history, only the context
        assert events == [("yolo.context_updated",
                           {"agent": "pm", "items": 2, "tokens": len(MEMLOG) // 4})]
        grown = (MEMLOG + "- (decision) lead with one pre-categorized account\n"
                 "- (event) blocked: no analytics data source\n"
                 "- (idea) a watering streak\n")
        write_atomically(memlog, grown)
        watcher.poll()
    assert [(name, fields.get("decision_type") or fields.get("rule") or fields.get("items"))
            for name, fields in events[1:]] == [
        ("yolo.decision_made", "decision"),
        ("yolo.safety_blocked", "memlog_halt"),
        ("yolo.context_updated", 5)]
    assert all("watering" not in str(fields) and "analytics" not in str(fields)
               for _, fields in events)  # never an entry's text


def test_a_memlog_cut_short_does_not_replay_its_entries(tmp_path: Path) -> None:
    memlog = tmp_path / "brief" / ".memlog.md"
    full = MEMLOG + "- (decision) one\n- (decision) two\n"
    write_in_place(memlog, full)
    watcher, _ = _watcher(tmp_path)
    watcher.poll()
    with recorded_signals() as events:
        write_in_place(memlog, MEMLOG)  # caught mid-write
        watcher.poll()
        write_in_place(memlog, full + "- (decision) three\n")
        watcher.poll()
    decisions = [fields for name, fields in events if name == "yolo.decision_made"]
    assert decisions == [{"agent": "analyst", "decision_type": "decision", "duration_s": 0.0}]


def test_the_roles_table_decides_who_hands_to_whom(tmp_path: Path) -> None:
    from telemetry.bmad.roles import roles_from
    roles = roles_from({"states": {"review": {"role": "tea"}}, "blocked": "safety"}, "test")
    watcher = BmadWatcher(tmp_path, roles, clock=Clock())
    with recorded_signals() as events:
        for number in range(1, 10):
            write_in_place(tmp_path / SPRINT_STATUS, _text(number))
            watcher.poll()
    handoffs = [(fields["from_agent"], fields["to_agent"]) for name, fields in events
                if name == "yolo.handoff_completed"]
    assert handoffs[:5] == [("sm", "dev"), ("dev", "tea"), ("tea", "dev"), ("dev", "tea"),
                            ("sm", "dev")]
    names = [name for name, _ in events]
    assert "yolo.mode_changed" not in names and "yolo.safety_blocked" in names


def test_a_same_size_rewrite_in_one_mtime_tick_is_seen(tmp_path: Path) -> None:
    path = tmp_path / SPRINT_STATUS
    watcher, _ = _watcher(tmp_path)
    write_in_place(path, _text(2))
    watcher.poll()
    stamp = path.stat().st_mtime_ns
    # 1-1 ready-for-dev -> review and 1-2 backlog -> done: the same size
    text = _text(2).replace("1-1-user-authentication: ready-for-dev",
                            "1-1-user-authentication: review       ")
    assert len(text) == len(_text(2))
    write_in_place(path, text)
    os.utime(path, ns=(stamp, stamp))  # as a coarse mtime tick would leave it
    watcher.poll()
    assert watcher.mapper.state.known.stories["1-1-user-authentication"] == "review"


def test_the_walk_skips_dependency_folders(tmp_path: Path) -> None:
    write_in_place(tmp_path / "node_modules" / "pkg" / ".memlog.md", MEMLOG)
    write_in_place(tmp_path / "node_modules" / "sprint-status.yaml", _text(2))
    watcher, dropped = _watcher(tmp_path)
    watcher.poll()
    assert watcher.counts.reads == 0 and dropped == [("adapter_bmad", "file_missing")]


def test_health_fails_once_the_file_is_missing_or_unreadable_for_two_polls(
        tmp_path: Path) -> None:
    path = tmp_path / SPRINT_STATUS
    watcher, _ = _watcher(tmp_path)
    assert watcher.health()["status"] == "starting"
    write_in_place(path, _text(2))
    watcher.poll()
    assert watcher.health()["status"] == "ok"
    assert watcher.health()["sprint_status"] == str(path)
    write_in_place(path, _text(8))  # caught mid-write: one poll is not a failure
    watcher.poll()
    assert watcher.health()["status"] == "ok"
    watcher.poll()
    assert watcher.health()["status"] == "failing"
    assert watcher.health()["unreadable"] == 1
    write_in_place(path, _text(3))
    watcher.poll()
    watcher.poll()  # unchanged: still fine
    assert watcher.health()["status"] == "ok"
    path.unlink()
    watcher.poll()
    watcher.poll()
    assert watcher.health() == {"status": "failing", "sprint_status": None, "memlogs": 0,
                                "polls": 7, "reads": 4, "unreadable": 1, "file_missing": 1,
                                "unknown_state": 0, "exception": 0}
