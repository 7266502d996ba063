"""The story's dataclasses (:class:`AgentMetrics`, :class:`SystemMetrics`) made from the
aggregates: from copies of the series taken a chunk of cells per hold of the lock
(:mod:`telemetry.aggregation.collection`) and a few facts read under one short hold,
so that a snapshot of 10,000 series (every /health) does not stall senders. Each
series is consistent; two series may be copied a moment apart."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

from telemetry import catalogue as cat
from telemetry.aggregation.collection import SeriesCopy, copy_all, copy_series
from telemetry.aggregation.state import AggregateState
from telemetry.aggregation.windows import CumulativeWindow
from telemetry.catalogue import MetricSpec
from telemetry.metrics import AgentMetrics, DurationSummary, SystemMetrics

if TYPE_CHECKING:
    from telemetry.aggregation.reentry import EventGuard


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
    lock across them, :meth:`AgentWindows.roll`)."""
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


class AgentWindows:
    """The two windows a snapshot reads (:mod:`telemetry.aggregation.windows`): every
    agent's errors and operations over the error-rate window (its error rate), and
    all agents' errors over the last hour. Recorded by reads, never by senders."""

    def __init__(self, length_s: float, buckets: int, start: float) -> None:
        self.error_rate = CumulativeWindow(length_s, buckets, start=start)
        self.hour = CumulativeWindow(3600.0, 60, start=start)

    def due(self, now: float) -> bool:
        """Whether either window wants a record at ``now``."""
        return self.error_rate.due(now) or self.hour.due(now)

    def record(self, now: float, totals: dict[tuple[str, str], float]) -> None:
        """Record :func:`agent_totals` read at ``now`` in the windows that are due
        (a record made meanwhile by another reader leaves them not due)."""
        if self.error_rate.due(now):
            self.error_rate.record(now, totals)
        if self.hour.due(now):
            self.hour.record(now, {"errors": errors_of(totals)})

    def roll(self, now: float, state: AggregateState, guard: EventGuard) -> None:
        """Record the totals if a slot boundary has passed since the last record. Reads
        call it, never senders: the totals are read a chunk of cells per hold of the
        lock. A re-entrant read (a finalizer inside an update) leaves it to the next."""
        with guard.lock:
            due = self.due(now)
        if not due or guard.held_here():
            return
        errors, decisions, handoffs = copy_all(
            [state.errors, state.decisions, state.handoffs], guard.lock, copy_series)
        totals = agent_totals_of(errors, decisions, handoffs)
        with guard.lock:
            self.record(now, totals)

    def totals(self, now: float, totals: dict[tuple[str, str], float],
               ) -> tuple[dict[tuple[str, str], float], float]:
        """The error-rate window's totals per (kind, agent), and the last hour's errors."""
        last_hour = self.hour.totals(now, {"errors": errors_of(totals)})
        return self.error_rate.totals(now, totals), last_hour["errors"]


def error_total(state: AggregateState) -> dict[str, float]:
    return {"errors": sum(cell.value for _, cell in state.errors.items())}


def by_label(state: AggregateState, spec: MetricSpec, index: int | None = 0) -> dict:
    """Totals of a series by one label (``index``) or by the whole label set (None)."""
    totals: dict = {}
    for labels, cell in state.series[spec].items():
        key = labels if index is None else labels[index]
        totals[key] = totals.get(key, 0) + _as_number(cell.value)
    return totals


#: The series the dataclasses are made from, copied in short holds of the lock.
SNAPSHOT_SPECS: tuple[MetricSpec, ...] = (
    cat.HANDOFFS, cat.DECISIONS, cat.ERRORS, cat.SAFETY_BLOCKS, cat.CONTEXT_ITEMS,
    cat.CONTEXT_TOKENS, cat.AGENT_ACTIVE_TIME, cat.HANDOFF_DURATION, cat.DECISION_DURATION,
    cat.CONTEXT_REFRESH_DURATION, cat.WORKFLOWS, cat.WORKFLOW_DURATION,
    cat.STATE_LOAD_DURATION, cat.EVENTS, cat.INVALID_EVENTS)

Copies = dict[MetricSpec, SeriesCopy]


def take(state: AggregateState, lock: Any, windows: AgentWindows, now: float,
         uptime_s: float, memory: float, cpu: float) -> tuple[AgentMetrics, SystemMetrics]:
    """The story's dataclasses: the series copied a chunk of cells per hold of ``lock``
    (the aggregator's), then the facts and the windows' totals under one short hold."""
    copied = copy_all([state.series[spec] for spec in SNAPSHOT_SPECS], lock, copy_series)
    copies = dict(zip(SNAPSHOT_SPECS, copied, strict=True))
    totals = agent_totals_of(copies[cat.ERRORS], copies[cat.DECISIONS], copies[cat.HANDOFFS])
    with lock:
        known = facts(state)
        in_window, last_hour_errors = windows.totals(now, totals)
    return (agent_metrics(copies, known, in_window, last_hour_errors),
            system_metrics(copies, known, uptime_s, memory, cpu))


class Facts(NamedTuple):
    """What is not a series, read under one short hold of the lock."""

    agents_active: int
    current_agent: str | None
    workflows_started: float
    state_saves: float
    last_load_ms: float
    state_size: int
    mode: str


def facts(state: AggregateState) -> Facts:
    """Call under the lock."""
    return Facts(len(state.active), next(reversed(state.active), None),
                 state.workflows_started.value, state.state_saves.value, state.last_load_ms,
                 state.state_size, state.mode)


def _by_label(copy: SeriesCopy, index: int | None = 0) -> dict:
    totals: dict = {}
    for labels, value in zip(copy.labels, copy.values, strict=True):
        key = labels if index is None else labels[index]
        totals[key] = totals.get(key, 0) + _as_number(value)
    return totals


def _summary(copy: SeriesCopy) -> DurationSummary:
    """Every series of a histogram as one summary (bucket by bucket)."""
    if not copy.values:
        return DurationSummary()
    columns = [sum(column) for column in zip(*copy.values, strict=True)]
    counts = tuple(columns[:-1])
    return DurationSummary(sum(counts), columns[-1], copy.spec.buckets, counts)


def agent_metrics(copies: Copies, known: Facts, in_window: dict[tuple[str, str], float],
                  errors_last_hour: float) -> AgentMetrics:
    """Agent figures from the copies, the facts and the windows' totals (``in_window``:
    errors and operations per agent over the error-rate window)."""
    handoffs = _by_label(copies[cat.HANDOFFS], None)
    decisions = _by_label(copies[cat.DECISIONS])
    errors = _by_label(copies[cat.ERRORS])
    blocks = _by_label(copies[cat.SAFETY_BLOCKS], 1)
    items = _by_label(copies[cat.CONTEXT_ITEMS])
    tokens = _by_label(copies[cat.CONTEXT_TOKENS])
    error_rate = {}
    for (kind, agent), operations in in_window.items():
        if kind == "operations":
            failed = in_window.get(("errors", agent), 0.0)
            error_rate[agent] = failed / operations if operations else 0.0
    return AgentMetrics(
        handoffs_total=sum(handoffs.values()),
        decisions_made=sum(decisions.values()),
        errors_total=sum(errors.values()),
        safety_blocks=sum(blocks.values()),
        current_agents_active=known.agents_active,
        current_agent=known.current_agent,
        context_items_total=sum(items.values()),
        context_tokens_used=sum(tokens.values()),
        handoff_duration=_summary(copies[cat.HANDOFF_DURATION]),
        decision_duration=_summary(copies[cat.DECISION_DURATION]),
        context_refresh_duration=_summary(copies[cat.CONTEXT_REFRESH_DURATION]),
        agent_active_time={a: float(v)
                           for a, v in _by_label(copies[cat.AGENT_ACTIVE_TIME]).items()},
        agent_error_rate=error_rate,
        errors_last_hour=int(errors_last_hour),
        handoffs_by_pair=handoffs,
        decisions_by_agent=decisions,
        errors_by_agent=errors,
        safety_blocks_by_rule=blocks,
        context_items_by_agent=items,
        context_tokens_by_agent=tokens,
    )


def system_metrics(copies: Copies, known: Facts, uptime_s: float, memory: float,
                   cpu: float) -> SystemMetrics:
    outcomes = _by_label(copies[cat.WORKFLOWS])
    durations = _summary(copies[cat.WORKFLOW_DURATION])
    return SystemMetrics(
        memory_usage_mb=memory / (1024 * 1024),
        cpu_usage_percent=cpu,
        workflows_started=int(known.workflows_started),
        workflows_completed=outcomes.get("completed", 0),
        workflows_failed=outcomes.get("failed", 0),
        average_workflow_time=durations.mean,
        state_saves_total=int(known.state_saves),
        state_loads_total=_summary(copies[cat.STATE_LOAD_DURATION]).count,
        state_load_time_ms=known.last_load_ms,
        state_file_size_bytes=known.state_size,
        mode=known.mode,
        uptime_seconds=uptime_s,
        events_total=sum(_by_label(copies[cat.EVENTS]).values()),
        invalid_events_total=sum(_by_label(copies[cat.INVALID_EVENTS]).values()),
    )


def _as_number(value: float) -> int | float:
    """Counts are kept as floats; show whole numbers as ints in snapshots."""
    return int(value) if math.isfinite(value) and value.is_integer() else value
