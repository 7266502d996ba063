"""Readings: what one instance answered at one moment, and the history of them.

A reading keeps only the metric samples the frame reads (:data:`WANTED`), so a few
minutes of history per instance stay small. Rates always come from two readings of
the same instance (a later one and one at least a window older), with counter
resets handled as Prometheus does: a value that went down started again from 0.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from telemetry import catalogue as cat

#: A series' labels, sorted, as a hashable key.
Labels = tuple[tuple[str, str], ...]

#: The sample names a frame reads; everything else in an answer is dropped.
WANTED: frozenset[str] = frozenset({
    cat.HANDOFFS.prometheus_name,
    cat.DECISIONS.prometheus_name,
    f"{cat.DECISION_DURATION.prometheus_name}_bucket",
    cat.ERRORS.prometheus_name,
    cat.CONTEXT_TOKENS.prometheus_name,
    cat.AGENTS_ACTIVE.prometheus_name,
    cat.WORKFLOWS_STARTED.prometheus_name,
    cat.WORKFLOWS.prometheus_name,
    cat.MODE.prometheus_name,
    cat.LLM_CALLS.prometheus_name,
    f"{cat.LLM_TOKEN_USAGE.prometheus_name}_sum",
    cat.LLM_COST.prometheus_name,
    cat.TOOL_CALLS.prometheus_name,
    cat.HANDOFF_LOOPS.prometheus_name,
    cat.AGENT_LAST_EVENT.prometheus_name,
    cat.AGENT_TOOL_CALL_STARTED.prometheus_name,
    cat.WORKFLOWS_IN_FLIGHT.prometheus_name,
    cat.WORKFLOW_OLDEST_START.prometheus_name,
    cat.ALERTS_FIRING.prometheus_name,
    cat.EVENTS.prometheus_name,
})


def labels_key(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


@dataclass(frozen=True)
class Reading:
    """One instance's answer: its samples by name, its /health document, or why not.

    ``error`` set with samples present means a partial answer (for example /metrics
    answered and /health did not); with no samples, the instance could not be read.
    """

    instance: str
    taken_at: float  # epoch seconds, this machine's clock
    samples: Mapping[str, Mapping[Labels, float]] = field(default_factory=dict)
    health: Mapping[str, Any] | None = None
    error: str | None = None
    #: A failure of the whole source (a Prometheus that does not answer) before any
    #: instance was known: forgotten once instances answer.
    placeholder: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.samples)

    def series(self, name: str) -> Mapping[Labels, float]:
        return self.samples.get(name, {})

    def total(self, name: str) -> float:
        return sum(self.series(name).values())

    def by(self, name: str, label: str) -> dict[str, float]:
        """The samples of ``name`` summed by one label (series without it left out)."""
        grouped: dict[str, float] = {}
        for labels, value in self.series(name).items():
            key = dict(labels).get(label)
            if key is not None:
                grouped[key] = grouped.get(key, 0.0) + value
        return grouped


class Source(Protocol):
    """Where readings come from: the instances themselves, or a Prometheus."""

    kind: str

    def describe(self) -> str: ...

    def history(self) -> list[Reading]:
        """Readings of the past to start with (a Prometheus has them; a process not)."""
        ...

    def read(self) -> list[Reading]:
        """One reading per instance, now; failures are readings with an error."""
        ...


def increase_by(old: Reading, new: Reading, name: str,
                labels: tuple[str, ...], where: Mapping[str, str] | None = None
                ) -> dict[tuple[str, ...], float]:
    """How much each counter series of ``name`` grew from ``old`` to ``new``, summed
    by ``labels``; a series that went down restarted (its whole new value counts)."""
    before = old.series(name)
    grown: dict[tuple[str, ...], float] = {}
    for key, value in new.series(name).items():
        series_labels = dict(key)
        if where and any(series_labels.get(k) not in v.split("|") for k, v in where.items()):
            continue
        previous = before.get(key, 0.0)
        delta = value - previous if value >= previous else value
        group = tuple(series_labels.get(label, "") for label in labels)
        grown[group] = grown.get(group, 0.0) + delta
    return grown


def increase(old: Reading, new: Reading, name: str,
             where: Mapping[str, str] | None = None) -> float:
    return sum(increase_by(old, new, name, (), where).values())


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """``histogram_quantile`` over cumulative (upper bound, count) pairs, as PromQL
    interpolates it; None without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


class History:
    """The readings of each instance: every one of the last ``recent_s`` seconds, and
    one per ``coarse_step_s`` back to ``span_s``, for sparklines and rates."""

    def __init__(self, span_s: float = 300.0, recent_s: float = 70.0,
                 coarse_step_s: float = 5.0) -> None:
        self.span_s, self.recent_s, self.coarse_step_s = span_s, recent_s, coarse_step_s
        self._readings: dict[str, deque[Reading]] = {}
        self.last_error: dict[str, Reading] = {}
        self.order: list[str] = []  # instances in the order first seen

    def add(self, reading: Reading) -> None:
        if reading.instance not in self.order:
            self.order.append(reading.instance)
        if reading.ok:
            self._forget_placeholders()
        if not reading.ok:
            self.last_error[reading.instance] = reading
            return
        if reading.error:
            self.last_error[reading.instance] = reading
        else:
            self.last_error.pop(reading.instance, None)
        kept = self._readings.setdefault(reading.instance, deque())
        if kept and reading.taken_at <= kept[-1].taken_at:
            return  # out of order (a Prometheus reading of the past): keep time sorted
        kept.append(reading)
        self._thin(kept, reading.taken_at)

    def _forget_placeholders(self) -> None:
        for instance, failed in list(self.last_error.items()):
            if failed.placeholder and instance not in self._readings:
                del self.last_error[instance]
                self.order.remove(instance)

    def _thin(self, kept: deque[Reading], now: float) -> None:
        """Drop what is past the span, and older readings closer than a coarse step."""
        while kept and now - kept[0].taken_at > self.span_s:
            kept.popleft()
        thinned: list[Reading] = []
        for reading in kept:
            if (now - reading.taken_at > self.recent_s and thinned
                    and reading.taken_at - thinned[-1].taken_at < self.coarse_step_s):
                continue
            thinned.append(reading)
        if len(thinned) != len(kept):
            kept.clear()
            kept.extend(thinned)

    def instances(self) -> list[str]:
        return list(self.order)

    def readings(self, instance: str) -> list[Reading]:
        return list(self._readings.get(instance, ()))

    def latest(self, instance: str) -> Reading | None:
        kept = self._readings.get(instance)
        return kept[-1] if kept else None

    def at_or_before(self, instance: str, when: float) -> Reading | None:
        """The newest reading taken at or before ``when``; the oldest one when all are
        newer (so rates start from whatever span there is)."""
        kept = self.readings(instance)
        if not kept:
            return None
        index = bisect.bisect_right([r.taken_at for r in kept], when)
        return kept[max(index - 1, 0)]

    def add_all(self, readings: Iterable[Reading]) -> None:
        for reading in readings:
            self.add(reading)
