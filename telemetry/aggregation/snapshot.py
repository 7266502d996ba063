"""The story's dataclasses (:class:`AgentMetrics`, :class:`SystemMetrics`) made from the
aggregates; called by the aggregator under its lock."""

from __future__ import annotations

import math

from telemetry import catalogue as cat
from telemetry.aggregation.collection import SeriesCopy
from telemetry.aggregation.state import AggregateState
from telemetry.aggregation.windows import CumulativeWindow
from telemetry.catalogue import MetricSpec
from telemetry.metrics import AgentMetrics, DurationSummary, SystemMetrics


def agent_totals(state: AggregateState) -> dict[tuple[str, str], float]:
    """Cumulative errors and operations (decisions, handoffs sent, errors) per agent."""
    totals: dict[tuple[str, str], float] = {}
    for series, kind in ((state.errors, "errors"), (state.errors, "operations"),
                         (state.decisions, "operations"), (state.handoffs, "operations")):
        for labels, cell in series.items():
            key = (kind, labels[0])
            totals[key] = totals.get(key, 0.0) + cell.value
    return totals


def agent_totals_of(errors: SeriesCopy, decisions: SeriesCopy,
                    handoffs: SeriesCopy) -> dict[tuple[str, str], float]:
    """:func:`agent_totals` from copies of the three series (taken without holding the
    lock across them, :meth:`Aggregator._roll_windows`)."""
    totals: dict[tuple[str, str], float] = {}
    for copy, kind in ((errors, "errors"), (errors, "operations"),
                       (decisions, "operations"), (handoffs, "operations")):
        for labels, value in zip(copy.labels, copy.values, strict=True):
            key = (kind, labels[0])
            totals[key] = totals.get(key, 0.0) + value
    return totals


def errors_of(totals: dict[tuple[str, str], float]) -> float:
    """All agents' errors, from :func:`agent_totals`."""
    return sum(value for (kind, _), value in totals.items() if kind == "errors")


def error_total(state: AggregateState) -> dict[str, float]:
    return {"errors": sum(cell.value for _, cell in state.errors.items())}


def by_label(state: AggregateState, spec: MetricSpec, index: int | None = 0) -> dict:
    """Totals of a series by one label (``index``) or by the whole label set (None)."""
    totals: dict = {}
    for labels, cell in state.series[spec].items():
        key = labels if index is None else labels[index]
        totals[key] = totals.get(key, 0) + _as_number(cell.value)
    return totals


def _summary(state: AggregateState, spec: MetricSpec) -> DurationSummary:
    summary = DurationSummary()
    for _, cell in state.series[spec].items():
        counts = tuple(cell.counts)
        summary = summary.merged(DurationSummary(sum(counts), cell.sum, spec.buckets, counts))
    return summary


def agent_metrics(state: AggregateState, now: float, error_rate_window: CumulativeWindow,
                  hour_window: CumulativeWindow) -> AgentMetrics:
    """Agent figures; the windows must have recorded every boundary up to ``now``."""
    handoffs = by_label(state, cat.HANDOFFS, None)
    decisions = by_label(state, cat.DECISIONS)
    errors = by_label(state, cat.ERRORS)
    blocks = by_label(state, cat.SAFETY_BLOCKS, 1)
    items = by_label(state, cat.CONTEXT_ITEMS)
    tokens = by_label(state, cat.CONTEXT_TOKENS)
    in_window = error_rate_window.totals(now, agent_totals(state))
    error_rate = {}
    for (kind, agent), operations in in_window.items():
        if kind == "operations":
            failed = in_window.get(("errors", agent), 0.0)
            error_rate[agent] = failed / operations if operations else 0.0
    errors_last_hour = hour_window.totals(now, error_total(state))["errors"]
    return AgentMetrics(
        handoffs_total=sum(handoffs.values()),
        decisions_made=sum(decisions.values()),
        errors_total=sum(errors.values()),
        safety_blocks=sum(blocks.values()),
        current_agents_active=len(state.active),
        current_agent=next(reversed(state.active), None),
        context_items_total=sum(items.values()),
        context_tokens_used=sum(tokens.values()),
        handoff_duration=_summary(state, cat.HANDOFF_DURATION),
        decision_duration=_summary(state, cat.DECISION_DURATION),
        context_refresh_duration=_summary(state, cat.CONTEXT_REFRESH_DURATION),
        agent_active_time={a: float(v)
                           for a, v in by_label(state, cat.AGENT_ACTIVE_TIME).items()},
        agent_error_rate=error_rate,
        errors_last_hour=int(errors_last_hour),
        handoffs_by_pair=handoffs,
        decisions_by_agent=decisions,
        errors_by_agent=errors,
        safety_blocks_by_rule=blocks,
        context_items_by_agent=items,
        context_tokens_by_agent=tokens,
    )


def system_metrics(state: AggregateState, uptime_s: float, memory: float,
                   cpu: float) -> SystemMetrics:
    outcomes = by_label(state, cat.WORKFLOWS)
    durations = _summary(state, cat.WORKFLOW_DURATION)
    return SystemMetrics(
        memory_usage_mb=memory / (1024 * 1024),
        cpu_usage_percent=cpu,
        workflows_started=int(state.workflows_started.value),
        workflows_completed=outcomes.get("completed", 0),
        workflows_failed=outcomes.get("failed", 0),
        average_workflow_time=durations.mean,
        state_saves_total=int(state.state_saves.value),
        state_loads_total=_summary(state, cat.STATE_LOAD_DURATION).count,
        state_load_time_ms=state.last_load_ms,
        state_file_size_bytes=state.state_size,
        mode=state.mode,
        uptime_seconds=uptime_s,
        events_total=sum(by_label(state, cat.EVENTS).values()),
        invalid_events_total=sum(by_label(state, cat.INVALID_EVENTS).values()),
    )


def _as_number(value: float) -> int | float:
    """Counts are kept as floats; show whole numbers as ints in snapshots."""
    return int(value) if math.isfinite(value) and value.is_integer() else value
