"""The frame: everything one screen shows, as plain dataclasses (``--json`` prints it).

Rates are per second over the frame's rate window, except the handoff matrix and
the workflow counts, which are per minute over the last minute (or what history
there is). Ages are seconds. A value of None means "not known yet" (one reading
only, or the instance does not export it), shown as ``-``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: An agent's state, from its timestamps and the AgentStalled alert.
STATES = ("active", "in tool", "idle", "stalled")


@dataclass
class InstanceStatus:
    name: str
    status: str  # healthy / degraded / unhealthy, "lost" when it did not answer
    error: str | None = None  # what went wrong with the last reading
    last_ok_age_s: float | None = None  # how old the data shown for it is


@dataclass
class Alert:
    name: str
    severity: str
    labels: dict[str, str] = field(default_factory=dict)
    instance: str = ""


@dataclass
class Header:
    source: str
    service: str
    instances: list[InstanceStatus]
    mode: str | None
    status: str
    reasons: list[str]
    uptime_s: float | None
    events_per_s: float | None
    firing: list[Alert]
    selected: str | None = None  # the instance picked, None for all


@dataclass
class AgentRow:
    name: str
    instance: str
    state: str
    last_event_age_s: float | None
    in_tool_s: float | None
    decisions_per_s: float | None
    handoffs_per_s: float | None
    errors_per_s: float | None
    decision_p95_s: float | None
    context_tokens: float | None
    context_level: str  # ok / warning / critical
    tokens_per_s: float | None
    cost_usd: float


@dataclass
class HandoffCell:
    from_agent: str
    to_agent: str
    per_minute: float
    total: float
    bounce_back: bool  # the reverse handoff also happened in the window
    loop: bool  # a loop back to to_agent was counted in the window


@dataclass
class Handoffs:
    agents: list[str]
    cells: list[HandoffCell]
    loops: dict[str, float]  # loops back to each agent in the window
    window_s: float


@dataclass
class Workflows:
    in_flight: float | None
    started_per_min: float | None
    completed_per_min: float | None
    failed_per_min: float | None
    oldest_in_flight_s: float | None


@dataclass
class Sparklines:
    step_s: float
    events_per_s: list[float]
    errors_per_s: list[float]
    tokens_per_s: list[float]


@dataclass
class Thresholds:
    warning_tokens: float
    critical_tokens: float


@dataclass
class Frame:
    taken_at: float
    rate_window_s: float
    header: Header
    agents: list[AgentRow]
    handoffs: Handoffs
    workflows: Workflows
    sparklines: Sparklines
    context: Thresholds

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Sort keys of the agents table, in the order ``s`` cycles through them.
SORT_KEYS = ("name", "state", "last event", "decisions/s", "errors/s", "tokens/s", "cost",
             "context")
_STATE_RANK = {"stalled": 0, "in tool": 1, "active": 2, "idle": 3}


def _sort_value(row: AgentRow, key: str) -> Any:
    numbers = {"last event": row.last_event_age_s, "decisions/s": row.decisions_per_s,
               "errors/s": row.errors_per_s, "tokens/s": row.tokens_per_s,
               "cost": row.cost_usd, "context": row.context_tokens}
    if key == "state":
        return (_STATE_RANK.get(row.state, 9), row.name, row.instance)
    if key in numbers:
        value = numbers[key]
        return (value is None, -(value or 0.0), row.name, row.instance)  # largest first
    return (row.name, row.instance)


def shown_rows(rows: list[AgentRow], sort: str = "name", reverse: bool = False,
               filter_text: str = "") -> list[AgentRow]:
    """The rows the table shows: those whose agent or instance name contains
    ``filter_text``, sorted (numbers largest first, unknown last)."""
    needle = filter_text.strip().lower()
    kept = [row for row in rows if needle in row.name.lower() or needle in row.instance.lower()]
    return sorted(kept, key=lambda row: _sort_value(row, sort), reverse=reverse)
