"""What the signal handlers update: every series, the cells they touch most, and the
few facts that are not metrics (who is active, the mode, the last state file).

:class:`AggregateState` is declared here, field by field, so a handler's reads and
writes can be checked against one definition. The aggregator owns one and holds its
lock around every handler call and every read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from telemetry import catalogue as cat
from telemetry.aggregation.handlers.operations import OperationsState, Prices
from telemetry.aggregation.series import (
    CounterCell,
    ExemplarSource,
    GaugeCell,
    HistogramCell,
    Series,
)
from telemetry.catalogue import Kind, MetricSpec
from telemetry.model import TimerSample
from telemetry.signals import MODES

if TYPE_CHECKING:
    from telemetry.aggregation.handlers.calls import LlmCells, ToolCells

#: The least cap of telemetry's own series (signals x reasons, exporters, metrics).
SELF_METRIC_SERIES = 1000
#: The least cap of telemetry's own label values (signal, metric and alert names):
#: ``limits.max_label_length`` is for the orchestrator's values, and a cut signal
#: name (``yolo.hand…``) would be ambiguous.
SELF_METRIC_LABEL_LENGTH = 256


class CellPair:
    """The counter and histogram cells one event of a timed signal updates."""

    __slots__ = ("counter", "histogram")

    def __init__(self, counter: CounterCell, histogram: HistogramCell) -> None:
        self.counter = counter
        self.histogram = histogram


class AggregateState:
    """The aggregates of one :class:`~telemetry.aggregation.aggregator.Aggregator`.

    Made by :meth:`build`. In a compiled build it is a C structure (``state.pxd``):
    the handlers read its fields without an attribute lookup.
    """

    def __init__(self, series: dict[MetricSpec, Series], *, max_series: int,
                 max_label_length: int, ops: OperationsState) -> None:
        self.series = series
        self.max_series = max_series
        self.max_label_length = max_label_length
        # The labelled series the handlers update:
        self.handoffs: Series = series[cat.HANDOFFS]
        self.handoff_duration: Series = series[cat.HANDOFF_DURATION]
        self.decisions: Series = series[cat.DECISIONS]
        self.decision_duration: Series = series[cat.DECISION_DURATION]
        self.errors: Series = series[cat.ERRORS]
        self.safety_blocks: Series = series[cat.SAFETY_BLOCKS]
        self.agent_active_time: Series = series[cat.AGENT_ACTIVE_TIME]
        self.context_items: Series = series[cat.CONTEXT_ITEMS]
        self.context_tokens: Series = series[cat.CONTEXT_TOKENS]
        self.context_refresh_duration: Series = series[cat.CONTEXT_REFRESH_DURATION]
        self.workflows: Series = series[cat.WORKFLOWS]
        self.workflow_duration: Series = series[cat.WORKFLOW_DURATION]
        self.mode_series: Series = series[cat.MODE]
        self.llm_calls: Series = series[cat.LLM_CALLS]
        self.llm_errors: Series = series[cat.LLM_ERRORS]
        self.llm_duration: Series = series[cat.LLM_CALL_DURATION]
        self.llm_tokens: Series = series[cat.LLM_TOKEN_USAGE]
        self.llm_cost: Series = series[cat.LLM_COST]
        self.tool_calls: Series = series[cat.TOOL_CALLS]
        self.tool_errors: Series = series[cat.TOOL_ERRORS]
        self.tool_duration: Series = series[cat.TOOL_CALL_DURATION]
        self.tool_repeats: Series = series[cat.TOOL_CALL_REPEATS]
        self.handoff_loops: Series = series[cat.HANDOFF_LOOPS]
        self.dropped: Series = series[cat.DROPPED]
        #: Agent operations: stalls, loops, repeats, workflows in flight, mode time.
        self.ops = ops
        #: ``ops.last_seen``, one attribute closer: every event naming an agent stores here.
        self.last_seen: dict[str, float] = ops.last_seen
        # Unlabelled metrics have exactly one cell: the cell itself.
        self.workflows_started: CounterCell = series[cat.WORKFLOWS_STARTED].cell(())
        self.agents_active: GaugeCell = series[cat.AGENTS_ACTIVE].cell(())
        self.state_saves: CounterCell = series[cat.STATE_SAVES].cell(())
        self.state_save_duration: HistogramCell = series[cat.STATE_SAVE_DURATION].cell(())
        self.state_load_duration: HistogramCell = series[cat.STATE_LOAD_DURATION].cell(())
        self.state_file_size: GaugeCell = series[cat.STATE_FILE_SIZE].cell(())
        #: Active agents (by name, capped like a label) -> activation time (epoch s).
        self.active: dict[str, float] = {}
        #: Wall time minus the monotonic clock (kept by the aggregator): an event sent
        #: without a timestamp happened at epoch second ``now + wall_offset``, ``now``
        #: being its send time, however much later it is recorded.
        self.wall_offset = 0.0
        self.mode = "active"
        self.last_load_ms = 0.0
        self.state_size = 0
        #: (from_agent, to_agent) and (agent, decision_type) -> the cells their events
        #: update, for the fast paths of handoffs and decisions
        #: (:data:`~telemetry.aggregation.handlers.FAST_PATHS`). See :meth:`pair`.
        self.handoff_cells: dict[tuple[str, str], CellPair] = {}
        self.decision_cells: dict[tuple[str, str], CellPair] = {}
        #: (agent, model) and (agent, tool) -> the cell bundle of their calls
        #: (:mod:`telemetry.aggregation.handlers.calls`), remembered under the same rules.
        self.llm_cells: dict[tuple[str, str], LlmCells] = {}
        self.tool_cells: dict[tuple[str, str], ToolCells] = {}

    @classmethod
    def build(cls, *, max_series: int, max_label_length: int,
              on_overflow: Callable[[MetricSpec], None],
              clock: Callable[[], float], loop_window: int = 4, repeat_threshold: int = 3,
              max_workflows_in_flight: int = 10000,
              prices: Prices | None = None) -> AggregateState:
        """Every catalogue metric's series, with their limits, and the operator state
        (:mod:`telemetry.aggregation.handlers.operations`) with its settings."""
        ops = OperationsState(max_agents=max_series, max_label_length=max_label_length,
                              loop_window=loop_window, repeat_threshold=repeat_threshold,
                              max_workflows_in_flight=max_workflows_in_flight, prices=prices,
                              now=clock())
        series = {}
        for spec in cat.CATALOGUE:
            # Telemetry's own label sets are bounded by the code, not the input, and
            # must not overflow into themselves: a cap of 1 would recurse.
            own = spec.self_metric or spec is cat.ALERTS_FIRING
            series[spec] = Series(
                spec, max_series=max(max_series, SELF_METRIC_SERIES) if spec.self_metric
                else max_series,
                max_label_length=max(max_label_length, SELF_METRIC_LABEL_LENGTH) if own
                else max_label_length,
                on_overflow=None if spec is cat.SERIES_OVERFLOW else on_overflow, clock=clock)
        return cls(series, max_series=max_series, max_label_length=max_label_length, ops=ops)

    def touch(self, agent: str, now: float) -> None:
        """Note ``now`` as the last event of ``agent``, when it is active (an agent is
        in ``last_seen`` from its activation to its deactivation)."""
        seen = self.last_seen
        if agent in seen:
            seen[agent] = now

    def pair(self, table: dict[tuple[str, str], CellPair], key: tuple[str, str],
             counters: Series, histograms: Series, histogram_key: tuple) -> CellPair:
        """The cells for ``key``, remembered in ``table`` unless either is an overflow
        cell (a later purge may free room) or a name is longer than a label (only
        capped names are kept, so hostile names cannot grow the table)."""
        cells = CellPair(counters.cell(key), histograms.cell(histogram_key))
        if (len(table) < 2 * self.max_series and not counters.is_overflow(cells.counter)
                and not histograms.is_overflow(cells.histogram)
                and all(len(name) <= self.max_label_length for name in key)):
            table[key] = cells
        return cells

    def count_dropped(self, component: str, reason: str, now: float) -> None:
        """Count an item a bounded table had no room for (under the lock already)."""
        self.dropped.cell((component, reason)).inc(1, now)

    def forget_cells(self) -> None:
        """Drop the remembered pairs and bundles (after a purge removed cells they
        point to)."""
        self.handoff_cells.clear()
        self.decision_cells.clear()
        self.llm_cells.clear()
        self.tool_cells.clear()

    def keep_reservoirs(self, size: int) -> None:
        """Keep up to ``size`` observations per histogram cell and interval (at least)."""
        for series in self.histograms():
            series.reservoir_size = max(series.reservoir_size, size)
            for _, cell in series.items():
                cell.reservoir_size = series.reservoir_size

    def take_timer_samples(self) -> list[TimerSample]:
        """Every histogram cell's reservoir of this interval, each then reset."""
        taken: list[TimerSample] = []
        for series in self.histograms():
            for labels, cell in series.items():
                values, count = cell.take_interval()
                if count:
                    taken.append(TimerSample(series.spec, labels, tuple(values), count))
        return taken

    def set_histogram_features(self, tracks_extremes: bool,
                               exemplar_source: ExemplarSource | None) -> None:
        """What every histogram cell keeps besides its counts (:meth:`~telemetry.
        aggregation.series.Series.set_histogram_features`)."""
        for series in self.histograms():
            series.set_histogram_features(tracks_extremes, exemplar_source)

    def histograms(self) -> list[Series]:
        return [series for spec, series in self.series.items() if spec.kind is Kind.HISTOGRAM]

    def purge_stale(self, before: float) -> None:
        """Drop the label sets of the orchestrator's series not updated since ``before``
        (not telemetry's own, the mode or the firing alerts), and the remembered cells."""
        for spec, series in self.series.items():
            if (spec.labels and not spec.self_metric
                    and spec not in (cat.MODE, cat.ALERTS_FIRING)
                    and series.purge_stale(before)):
                self.forget_cells()

    def reset(self, now: float) -> None:
        """Forget who is active and the mode (the mode gauge starts at ``active``)."""
        self.active.clear()
        self.ops.reset(now)
        self.mode = "active"
        self.last_load_ms = 0.0
        self.state_size = 0
        for mode in MODES:
            self.mode_series.cell((mode,)).set(float(mode == self.mode), now)
        self.agents_active.set(0.0, now)
