"""Agent states, the table's sort and filter, and a frame built from nothing useful."""

from __future__ import annotations

import json

import pytest

from telemetry.top.agents import IDLE_BUDGET_S, TOOL_BUDGET_S, StateRules, agent_state
from telemetry.top.frame import build_frame
from telemetry.top.model import SORT_KEYS, AgentRow, shown_rows
from telemetry.top.plain import duration, frame_text, number, sparkline
from telemetry.top.readings import History, Reading

RULES = StateRules(active_within_s=30, idle_budget_s=300, tool_budget_s=1800)


def test_the_default_budgets_are_agent_stalled_s() -> None:
    assert (IDLE_BUDGET_S, TOOL_BUDGET_S) == (300, 1800)


@pytest.mark.parametrize(("last", "tool", "alert", "state"), [
    (1.0, None, False, "active"),
    (60.0, None, False, "idle"),
    (None, None, False, "idle"),  # not active at all
    (301.0, None, False, "stalled"),
    (60.0, 600.0, False, "in tool"),  # a long tool call is not a stall...
    (60.0, 1801.0, False, "stalled"),  # ...until its own budget
    (1.0, None, True, "stalled"),  # the alert knows better (demo budgets, Prometheus)
    (None, 5.0, True, "stalled"),
])
def test_an_agent_s_state(last: float | None, tool: float | None, alert: bool,
                          state: str) -> None:
    assert agent_state(last, tool, alert, RULES) == state


def _row(name: str, state: str = "idle", cost: float = 0.0,
         tokens: float | None = None, instance: str = "") -> AgentRow:
    return AgentRow(name, instance, state, None, None, None, None, None, None, None,
                    "ok", tokens, cost)


ROWS = [_row("qa", "stalled", 1.0, 5.0), _row("dev", "active", 3.0, None),
        _row("pm", "in tool", 2.0, 9.0, "b:1"), _row("analyst", "idle", 0.5, 1.0)]


@pytest.mark.parametrize(("sort", "reverse", "expected"), [
    ("name", False, ["analyst", "dev", "pm", "qa"]),
    ("name", True, ["qa", "pm", "dev", "analyst"]),
    ("state", False, ["qa", "pm", "dev", "analyst"]),
    ("cost", False, ["dev", "pm", "qa", "analyst"]),
    ("tokens/s", False, ["pm", "qa", "analyst", "dev"]),  # unknown last
])
def test_rows_sort_by_each_key(sort: str, reverse: bool, expected: list[str]) -> None:
    assert sort in SORT_KEYS
    assert [r.name for r in shown_rows(ROWS, sort, reverse)] == expected


def test_the_filter_matches_agent_or_instance_names() -> None:
    assert [r.name for r in shown_rows(ROWS, filter_text="A")] == ["analyst", "qa"]
    assert [r.name for r in shown_rows(ROWS, filter_text="b:1")] == ["pm"]
    assert shown_rows(ROWS, filter_text="nobody") == []


def test_a_frame_of_lost_or_empty_instances_is_still_a_frame() -> None:
    history = History()
    history.add(Reading("gone:1", 100.0, error="/metrics: connection refused"))
    history.add(Reading("odd:2", 100.0, {"yolo_agents_active": {(): 1.0}},
                        {"status": 7, "reasons": "not a list", "checks": {"alerts": []},
                         "context_health": {"warning_tokens": "x"}}))
    frame = build_frame(history, 101.0, "test")
    assert frame.agents == [] and frame.handoffs.cells == []
    assert [i.status for i in frame.header.instances] == ["lost", "7"]
    text = frame_text(frame, 100)
    assert "connection lost" in text and "(no agents)" in text
    json.dumps(frame.to_dict())  # --json can always print it


def test_the_number_formats() -> None:
    assert [number(v) for v in (None, 0, 0.4712, 12.34, 922.0, 8400, 1.2e6)] == [
        "-", "0", "0.47", "12.3", "922", "8.4k", "1.2M"]
    assert [duration(v) for v in (None, 0.25, 42, 185, 7440, 200000)] == [
        "-", "0.2s", "42s", "3m05s", "2h04m", "2d07h"]
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█" and sparkline([0, 0]) == "▁▁"
