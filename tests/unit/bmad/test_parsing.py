"""Parsing BMAD's files and the roles file: pure functions, no telemetry."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.bmad import RoleTable, load_roles
from telemetry.bmad.diff import Change, changes
from telemetry.bmad.memlog import Entry, parse_entries
from telemetry.bmad.roles import Ownership
from telemetry.bmad.state import SprintStatus, Unreadable, epic_of, parse_sprint_status
from telemetry.configsource import ConfigError
from tests.unit.bmad.support import SNAPSHOTS


def test_the_generated_format_parses_by_bmad_s_key_grammar() -> None:
    status = parse_sprint_status(SNAPSHOTS[0].read_text())
    assert status.epics == {"epic-1": "backlog", "epic-2": "backlog"}
    assert status.retrospectives == {"epic-1-retrospective": "optional",
                                     "epic-2-retrospective": "optional"}
    assert list(status.stories_of("epic-1")) == [
        "1-1-user-authentication", "1-2-account-management", "1-3-plant-data-model"]


def test_legacy_states_split_stories_and_odd_keys() -> None:
    status = parse_sprint_status(
        "development_status:\n  epic-12: in-progress\n  12-6a-split-story: drafted\n"
        "  12-7-other: contexted\n  12-8-x: Review\n  notes: whatever\n  12-9-none:\n")
    assert status.stories == {"12-6a-split-story": "ready-for-dev",
                              "12-7-other": "in-progress", "12-8-x": "review", "12-9-none": ""}
    assert epic_of("12-6a-split-story") == "epic-12"
    assert list(status.stories_of("epic-1")) == []  # epic-1 is not epic-12's prefix


@pytest.mark.parametrize("text", ["", "a: [", "just text", "development_status: 3"])
def test_what_is_not_a_sprint_status_is_unreadable(text: str) -> None:
    with pytest.raises(Unreadable):
        parse_sprint_status(text)


def test_changes_lists_moves_new_items_and_removals() -> None:
    before = SprintStatus(epics={"epic-1": "backlog"}, stories={"1-1-a": "backlog",
                                                                 "1-2-b": "done"})
    after = SprintStatus(epics={"epic-1": "in-progress"}, stories={"1-1-a": "review",
                                                                    "1-3-c": "backlog"})
    assert changes(before, after) == [
        Change("epic", "epic-1", "backlog", "in-progress"),
        Change("story", "1-1-a", "backlog", "review"),
        Change("story", "1-3-c", None, "backlog"),
        Change("story", "1-2-b", "done", None)]


def test_memlog_entries_are_kinds_without_text() -> None:
    text = ("---\ntopic: x\n---\n\n- plain note\n- (idea by user) skip the wall\n"
            "- (by coach) a prompt\n- (event) blocked: no data\n- (event) session complete\n"
            "- (Weird Tag!) y\nnot an entry\n")
    assert parse_entries(text) == [
        Entry("note", False), Entry("idea", False), Entry("note", False),
        Entry("event", True), Entry("event", False), Entry("other", False)]
    assert parse_entries("---\nunterminated\n- (idea) x\n") == []


def test_the_default_roles_are_bmad_s() -> None:
    roles = RoleTable()
    assert [roles.owner(state) for state in
            ("backlog", "ready-for-dev", "in-progress", "review", "done")] == \
        ["sm", "sm", "dev", "qa", "qa"]
    assert roles.actor("ready-for-dev", "in-progress") == "dev"
    assert roles.actor("review", "in-progress") == "qa"
    assert roles.memlog_agent("_bmad-output/planning-artifacts/prd-x/.memlog.md") == "pm"
    assert roles.memlog_agent("somewhere/.memlog.md") == "bmad"


def test_a_roles_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("states:\n  review: {role: tea, works: true}\n  ready-for-dev: po\n"
                    "memlogs:\n  brief: mary\nblocked: mode\n")
    roles = load_roles(str(path))
    assert roles.states["review"] == Ownership("tea", True)
    assert roles.states["ready-for-dev"] == Ownership("po", False)
    assert roles.memlogs == {"brief": "mary"} and roles.blocked == "mode"


@pytest.mark.parametrize(("text", "message"), [
    ("states:\n  reviewing: qa\n", "states.reviewing: expected one of backlog, ready-for-dev"),
    ("states:\n  review: {role: 3}\n", "states.review.role: expected an agent name"),
    ("states:\n  review: {works: maybe}\n", "states.review.works: expected true or false; "
                                            "found 'maybe'"),
    ("states:\n  review: {owner: qa}\n", "states.review.owner: expected role or works"),
    ("states: [qa]\n", "states: expected a mapping; found list"),
    ("blocked: loud\n", "blocked: expected one of safety, mode, both; found 'loud'"),
    ("roles: {}\n", "roles: expected one of states, memlogs, blocked"),
    ("memlogs:\n  prd: ''\n", "memlogs.prd: expected an agent name"),
    ("states: [\n", "not valid YAML"),
])
def test_a_bad_roles_file_names_the_file_and_key(tmp_path: Path, text: str,
                                                 message: str) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_roles(str(path))
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_a_missing_roles_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_roles(str(tmp_path / "nope.yaml"))
