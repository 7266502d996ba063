"""The snapshot dataclasses: what ``Telemetry.snapshot()`` returns.

They keep the field names of the original story, so code written against it keeps
working, and add per-agent breakdowns. A snapshot is a copy: mutating it changes
nothing in the aggregator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DurationSummary:
    """A duration distribution summarised from histogram buckets (seconds)."""

    count: int = 0
    sum: float = 0.0
    buckets: tuple[float, ...] = ()
    bucket_counts: tuple[int, ...] = ()

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        """Estimate a quantile by linear interpolation within its bucket, as
        Prometheus' ``histogram_quantile`` does, so both agree."""
        if not self.count:
            return math.nan
        rank = q * self.count
        cumulative = 0
        lower = 0.0
        for upper, in_bucket in zip((*self.buckets, math.inf), self.bucket_counts, strict=True):
            if cumulative + in_bucket >= rank and in_bucket:
                if math.isinf(upper):
                    return lower
                return lower + (upper - lower) * (rank - cumulative) / in_bucket
            cumulative += in_bucket
            lower = upper
        return lower

    @property
    def p50(self) -> float:
        return self.quantile(0.5)

    @property
    def p95(self) -> float:
        return self.quantile(0.95)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    def merged(self, other: DurationSummary) -> DurationSummary:
        if not self.bucket_counts:
            return other
        if not other.bucket_counts:
            return self
        counts = tuple(a + b for a, b in zip(self.bucket_counts, other.bucket_counts, strict=True))
        return DurationSummary(self.count + other.count, self.sum + other.sum,
                               self.buckets, counts)


@dataclass(frozen=True)
class AgentMetrics:
    handoffs_total: int = 0
    decisions_made: int = 0
    errors_total: int = 0
    safety_blocks: int = 0
    current_agents_active: int = 0
    current_agent: str | None = None
    context_items_total: int = 0
    context_tokens_used: int = 0
    handoff_duration: DurationSummary = field(default_factory=DurationSummary)
    decision_duration: DurationSummary = field(default_factory=DurationSummary)
    context_refresh_duration: DurationSummary = field(default_factory=DurationSummary)
    #: Seconds each agent spent active (finished activations only).
    agent_active_time: dict[str, float] = field(default_factory=dict)
    #: Errors per operation over the error-rate window, per agent (0..1); operations
    #: are decisions, handoffs the agent sent and errors. The dashboard's "Error
    #: ratio per agent" leaves handoffs out (errors / (errors + decisions)).
    agent_error_rate: dict[str, float] = field(default_factory=dict)
    errors_last_hour: int = 0
    handoffs_by_pair: dict[tuple[str, str], int] = field(default_factory=dict)
    decisions_by_agent: dict[str, int] = field(default_factory=dict)
    errors_by_agent: dict[str, int] = field(default_factory=dict)
    safety_blocks_by_rule: dict[str, int] = field(default_factory=dict)
    context_items_by_agent: dict[str, int] = field(default_factory=dict)
    context_tokens_by_agent: dict[str, int] = field(default_factory=dict)

    # The story's own names for the three distributions, so code written against it
    # reads the same summaries (count, sum, mean, p50/p95/p99, in seconds).

    @property
    def handoff_duration_seconds(self) -> DurationSummary:
        """The story's name for :attr:`handoff_duration`."""
        return self.handoff_duration

    @property
    def decision_time_seconds(self) -> DurationSummary:
        """The story's name for :attr:`decision_duration`."""
        return self.decision_duration

    @property
    def context_refresh_time_seconds(self) -> DurationSummary:
        """The story's name for :attr:`context_refresh_duration`."""
        return self.context_refresh_duration


@dataclass(frozen=True)
class SystemMetrics:
    memory_usage_mb: float = 0.0
    cpu_usage_percent: float = 0.0
    workflows_started: int = 0
    workflows_completed: int = 0
    workflows_failed: int = 0
    average_workflow_time: float = 0.0
    state_saves_total: int = 0
    state_loads_total: int = 0
    #: Duration of the most recent state load, in milliseconds.
    state_load_time_ms: float = 0.0
    state_file_size_bytes: int = 0
    mode: str = "active"
    uptime_seconds: float = 0.0
    events_total: int = 0
    invalid_events_total: int = 0
