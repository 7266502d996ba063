"""The agents table: one row per agent, merged over the instances shown.

An agent's state comes from the timestamps the server exports and the AgentStalled
alert: ``in tool`` while a tool call is open, ``active`` when its last event is
recent, ``idle`` when it is quiet (or not active at all), and ``stalled`` when the
alert fires for it or its silence passes the alert's own budgets (5 minutes between
calls, 30 inside one, unless told otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from telemetry import catalogue as cat
from telemetry.alerting.builtins import DEFAULT_ALERTS
from telemetry.top.model import AgentRow, Thresholds
from telemetry.top.readings import Reading, increase_by, quantile

TOKENS = f"{cat.LLM_TOKEN_USAGE.prometheus_name}_sum"
DECISION_BUCKETS = f"{cat.DECISION_DURATION.prometheus_name}_bucket"
#: Tokens that count towards tokens/s (cached input is part of input).
SPENT = {"token_type": "input|output"}


def _stall_budgets() -> tuple[float, float]:
    """AgentStalled's built-in budgets: between calls, inside a tool call."""
    (stalled,) = [alert for alert in DEFAULT_ALERTS if alert.name == "AgentStalled"]
    tool = [reading.threshold for reading in stalled.or_] or [stalled.threshold]
    return stalled.threshold, tool[0]


IDLE_BUDGET_S, TOOL_BUDGET_S = _stall_budgets()


@dataclass(frozen=True)
class StateRules:
    active_within_s: float = 30.0
    idle_budget_s: float = IDLE_BUDGET_S
    tool_budget_s: float = TOOL_BUDGET_S


def agent_state(last_age: float | None, tool_age: float | None, alert_firing: bool,
                rules: StateRules) -> str:
    if tool_age is not None:
        return "stalled" if alert_firing or tool_age > rules.tool_budget_s else "in tool"
    if alert_firing or (last_age is not None and last_age > rules.idle_budget_s):
        return "stalled"
    if last_age is not None and last_age <= rules.active_within_s:
        return "active"
    return "idle"


class _Agent:
    """What one instance says of one agent."""

    def __init__(self) -> None:
        self.decisions = self.handoffs = self.errors = self.tokens = 0.0
        self.cost = 0.0
        self.context: float | None = None
        self.last_event: float | None = None
        self.tool_started: float | None = None
        self.buckets: dict[float, float] = {}
        self.all_buckets: dict[float, float] = {}
        self.stalled_alert = False


def agent_rows(pairs: Iterable[tuple[Reading | None, Reading]], now: float,
               thresholds: Thresholds, rules: StateRules) -> list[AgentRow]:
    """Rows from (reading a window ago or None, latest reading) of each instance; an
    agent of the same name in two instances is two agents, so two rows."""
    pairs = list(pairs)
    several = len(pairs) > 1
    rows = []
    for base, latest in pairs:
        agents = _instance_agents(base, latest)
        instance = latest.instance if several else ""
        rows += [_row(name, instance, item, now, thresholds, rules, base is not None)
                 for name, item in sorted(agents.items())]
    return rows


def _instance_agents(base: Reading | None, latest: Reading) -> dict[str, _Agent]:
    agents: dict[str, _Agent] = {}

    def agent(name: str) -> _Agent:
        return agents.setdefault(name, _Agent())

    _add_latest(latest, agent)
    if base is None:
        return agents
    elapsed = latest.taken_at - base.taken_at
    for attribute, name, label, where in (
            ("decisions", cat.DECISIONS.prometheus_name, "agent", None),
            ("handoffs", cat.HANDOFFS.prometheus_name, "from_agent", None),
            ("errors", cat.ERRORS.prometheus_name, "agent", None),
            ("tokens", TOKENS, "agent", SPENT)):
        for (key,), grown in increase_by(base, latest, name, (label,), where).items():
            item = agent(key)
            setattr(item, attribute, getattr(item, attribute) + grown / elapsed)
    for (key, bound), grown in increase_by(base, latest, DECISION_BUCKETS,
                                           ("agent", "le")).items():
        upper = _bound(bound)
        if upper is not None:
            buckets = agent(key).buckets
            buckets[upper] = buckets.get(upper, 0.0) + grown
    return agents


def _add_latest(latest: Reading, get: Callable[[str], _Agent]) -> None:
    """What the latest reading says of each agent: totals, gauges and timestamps."""
    for name, value in latest.by(cat.CONTEXT_TOKENS.prometheus_name, "agent").items():
        get(name).context = value
    for name, value in latest.by(cat.LLM_COST.prometheus_name, "agent").items():
        get(name).cost += value
    for name, value in latest.by(cat.AGENT_LAST_EVENT.prometheus_name, "agent").items():
        get(name).last_event = value
    for name, value in latest.by(cat.AGENT_TOOL_CALL_STARTED.prometheus_name, "agent").items():
        get(name).tool_started = value
    for name in latest.by(cat.DECISIONS.prometheus_name, "agent"):
        get(name)
    for labels, value in latest.series(DECISION_BUCKETS).items():
        found = dict(labels)
        if "agent" in found and "le" in found:
            buckets = get(found["agent"]).all_buckets
            bound = _bound(found["le"])
            if bound is not None:
                buckets[bound] = buckets.get(bound, 0.0) + value
    for name in stalled_agents(latest):
        get(name).stalled_alert = True


def _bound(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def stalled_agents(reading: Reading) -> set[str]:
    """Agents the instance's AgentStalled alert fires for, from its /health."""
    found = set()
    for alert in firing_alerts(reading):
        labels = alert.get("labels")
        if alert.get("alertname") == "AgentStalled" and isinstance(labels, dict):
            found.add(str(labels.get("agent", "")))
    return found - {""}


def firing_alerts(reading: Reading) -> list[dict]:
    """The firing alerts a /health lists (tolerating any shape of document)."""
    health = reading.health if isinstance(reading.health, dict) else {}
    checks = health.get("checks")
    alerts = checks.get("alerts") if isinstance(checks, dict) else None
    firing = alerts.get("firing") if isinstance(alerts, dict) else None
    return [a for a in firing if isinstance(a, dict)] if isinstance(firing, list) else []


def _row(name: str, instance: str, item: _Agent, now: float, thresholds: Thresholds,
         rules: StateRules, rated: bool) -> AgentRow:
    last_age = max(now - item.last_event, 0.0) if item.last_event else None
    tool_age = max(now - item.tool_started, 0.0) if item.tool_started else None
    p95 = quantile(0.95, item.buckets.items())
    if p95 is None:  # no decision in the window: over the whole run
        p95 = quantile(0.95, item.all_buckets.items())
    context = item.context
    level = ("critical" if context is not None and context >= thresholds.critical_tokens
             else "warning" if context is not None and context >= thresholds.warning_tokens
             else "ok")

    def rate(value: float) -> float | None:
        return value if rated else None

    return AgentRow(
        name=name, instance=instance,
        state=agent_state(last_age, tool_age, item.stalled_alert, rules),
        last_event_age_s=last_age, in_tool_s=tool_age,
        decisions_per_s=rate(item.decisions), handoffs_per_s=rate(item.handoffs),
        errors_per_s=rate(item.errors), decision_p95_s=p95, context_tokens=context,
        context_level=level, tokens_per_s=rate(item.tokens), cost_usd=item.cost)
