"""The aggregator: the one receiver of every signal, and the state exporters read.

Per event it takes one short lock and runs one handler from
:attr:`Aggregator.HANDLERS`, which validates the whole payload before its first
update and then makes O(1) updates to cached cells. One acquisition per event is
cheaper than validating outside and locking twice (the event counter needs the lock
too). Exporters never run here: they call :meth:`collect` (or
:meth:`take_timer_samples`) on their own schedule.

blinker propagates receiver exceptions to the sender and holds receivers weakly by
default, so the aggregator connects strongly and catches everything: an invalid
payload is counted and logged once per (signal, reason); it never reaches the
orchestrator.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import blinker

from telemetry import catalogue as cat
from telemetry import validation as check
from telemetry.aggregation.handlers import SignalHandlers
from telemetry.aggregation.process import ProcessSampler
from telemetry.aggregation.series import Series
from telemetry.aggregation.windows import CumulativeWindow
from telemetry.catalogue import Kind, MetricSpec
from telemetry.metrics import AgentMetrics, DurationSummary, SystemMetrics
from telemetry.model import Family, HistogramValue, Sample, TimerSample
from telemetry.signals import CONTRACT, MODES
from telemetry.validation import InvalidEvent

log = logging.getLogger("telemetry.aggregator")

#: Every n-th event of a signal is timed to estimate the handlers' own cost cheaply.
_HANDLER_SAMPLE_EVERY = 64

#: The least cap of telemetry's own series (signals x reasons, exporters, metrics).
_SELF_METRIC_SERIES = 1000
#: The least cap of telemetry's own label values (signal, metric and alert names):
#: ``limits.max_label_length`` is for the orchestrator's values, and a cut signal
#: name (``yolo.hand…``) would be ambiguous.
_SELF_METRIC_LABEL_LENGTH = 256

#: Called after an event is accepted: (signal name, payload, event timestamp).
EventListener = Callable[[str, dict[str, Any], float], None]


class Aggregator(SignalHandlers):
    """Turns signals into metric cells and snapshot dataclasses.

    Each signal's handler (:class:`~telemetry.aggregation.handlers.SignalHandlers`, by the
    :attr:`HANDLERS` table) runs under the lock taken here.

    ``clock`` is the monotonic time used for windows and staleness (tests inject a
    fake); event timestamps come from the signals themselves.
    """

    def __init__(
        self,
        *,
        max_series: int = 1000,
        max_label_length: int = 128,
        error_rate_window_s: float = 300.0,
        window_buckets: int = 30,
        stale_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.max_series = max_series
        self.stale_after_s = stale_after_s
        self._window = (error_rate_window_s, window_buckets)
        self.next_roll = float("inf")
        self._series: dict[MetricSpec, Series] = {}
        for spec in cat.CATALOGUE:
            # Telemetry's own label sets are bounded by the code, not the input, and
            # must not overflow into themselves: a cap of 1 would recurse.
            own = spec.self_metric or spec is cat.ALERTS_FIRING
            self._series[spec] = Series(
                spec, max_series=max(max_series, _SELF_METRIC_SERIES) if spec.self_metric
                else max_series,
                max_label_length=max(max_label_length, _SELF_METRIC_LABEL_LENGTH) if own
                else max_label_length,
                on_overflow=None if spec is cat.SERIES_OVERFLOW else self._count_overflow,
                clock=clock,
            )
        series = self._series
        self._handoffs, self._handoff_duration = series[cat.HANDOFFS], series[cat.HANDOFF_DURATION]
        self._decisions = series[cat.DECISIONS]
        self._decision_duration = series[cat.DECISION_DURATION]
        self._errors, self._safety_blocks = series[cat.ERRORS], series[cat.SAFETY_BLOCKS]
        self._agent_active_time = series[cat.AGENT_ACTIVE_TIME]
        self._context_items = series[cat.CONTEXT_ITEMS]
        self._context_tokens = series[cat.CONTEXT_TOKENS]
        self._context_refresh_duration = series[cat.CONTEXT_REFRESH_DURATION]
        self._workflows = series[cat.WORKFLOWS]
        self._workflow_duration = series[cat.WORKFLOW_DURATION]
        self._mode_series = series[cat.MODE]
        # Unlabelled metrics have exactly one cell: keep the cell itself.
        self._workflows_started = series[cat.WORKFLOWS_STARTED].cell(())
        self._agents_active = series[cat.AGENTS_ACTIVE].cell(())
        self._state_saves = series[cat.STATE_SAVES].cell(())
        self._state_save_duration = series[cat.STATE_SAVE_DURATION].cell(())
        self._state_load_duration = series[cat.STATE_LOAD_DURATION].cell(())
        self._state_file_size = series[cat.STATE_FILE_SIZE].cell(())
        self._listeners: tuple[EventListener, ...] = ()
        self._receivers: dict[str, Callable[..., None]] = {}
        self._logged_invalid: set[tuple[str, str]] = set()
        self._passed_workflow_id: object = None
        #: Raw label values -> the (counter, histogram) cells of the two hottest signals.
        self._handoff_cells: dict[tuple, tuple] = {}
        self._decision_cells: dict[tuple, tuple] = {}
        self._handler_time = self._series[cat.HANDLER_TIME].cell(())
        self._process = ProcessSampler()
        self._started_at = clock()
        self._reset_state()

    # -- wiring ---------------------------------------------------------------

    def connect(self) -> None:
        """Subscribe to every signal of the contract (strongly: see the module doc)."""
        for spec in CONTRACT:
            if spec.name in self._receivers:
                continue
            receiver = self._make_receiver(spec.name, getattr(self, self.HANDLERS[spec.name]))
            self._receivers[spec.name] = receiver
            blinker.signal(spec.name).connect(receiver, weak=False)

    def disconnect(self) -> None:
        for name, receiver in self._receivers.items():
            blinker.signal(name).disconnect(receiver)
        self._receivers.clear()

    def renew_locks(self) -> None:
        """Fresh locks for a forked child, where a parent thread may have held them."""
        self._lock = threading.Lock()
        self._process = ProcessSampler()

    def add_listener(self, listener: EventListener) -> None:
        """Also pass every accepted event to ``listener`` (the tracer, slow-op capture).

        Listeners run after the metrics update, outside the lock; their exceptions
        are logged and counted, never raised.
        """
        self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: EventListener) -> None:
        self._listeners = tuple(item for item in self._listeners if item is not listener)

    def _make_receiver(self, signal_name: str, handler: Callable[[dict, float], None]):
        # Everything the hot path touches is bound to locals once, here.
        events = self._series[cat.EVENTS].cell((signal_name,))
        acquire, release = self._lock.acquire, self._lock.release
        clock, handler_time = self._clock, self._handler_time
        perf_counter = time.perf_counter

        countdown = _HANDLER_SAMPLE_EVERY

        def receive_fields(sender: Any, fields: dict[str, Any]) -> None:
            nonlocal countdown
            countdown -= 1
            started = 0.0
            if countdown <= 0:  # not `== 0`: threads may race past zero
                countdown = _HANDLER_SAMPLE_EVERY
                started = perf_counter()
            try:
                if fields.get("timestamp") is not None:
                    check.timestamp(fields, 0.0)
                # On nearly every event, and the same object for a whole workflow: the
                # last one that passed is remembered, so most events compare identity.
                workflow_id = fields.get("workflow_id")
                if workflow_id is not None and workflow_id is not self._passed_workflow_id:
                    if not (type(workflow_id) is str and workflow_id
                            and not workflow_id.isspace()):
                        check.name(fields, "workflow_id")
                    self._passed_workflow_id = workflow_id
                now = clock()
                acquire()  # try/finally rather than `with`: half the cost per event
                try:
                    if now >= self.next_roll:
                        self._roll_windows(now)
                    handler(fields, now)
                    events.value += 1
                    if started:
                        handler_time.value += (perf_counter() - started) * _HANDLER_SAMPLE_EVERY
                finally:
                    release()
            except InvalidEvent as invalid:
                self._count_invalid(signal_name, invalid.reason)
                return
            except Exception:
                self._count_invalid(signal_name, "internal_error")
                log.exception("telemetry failed to handle %s", signal_name)
                return
            listeners = self._listeners
            if listeners:
                ts = fields.get("timestamp")  # checked above
                ts = time.time() if ts is None else float(ts)
                for listener in listeners:
                    try:
                        listener(signal_name, fields, ts)
                    except Exception:
                        self._listener_failed(listener)

        def receive(sender: Any, **fields: Any) -> None:
            receive_fields(sender, fields)

        # YoloSignal calls this directly with the send's keyword arguments as one
        # dict when the aggregator is the signal's only receiver.
        receive.receive_fields = receive_fields  # type: ignore[attr-defined]
        receive.__name__ = f"receive_{signal_name.replace('.', '_')}"
        return receive

    def _listener_failed(self, listener: EventListener) -> None:
        """Count a listener's exception (being handled) and log the first of each."""
        self.count_dropped("listener", "exception")
        key = ("listener", getattr(listener, "__qualname__", repr(listener)))
        if key not in self._logged_invalid:
            self._logged_invalid.add(key)
            log.exception("telemetry listener %s failed; further failures are only counted",
                          key[1])

    def _count_invalid(self, signal_name: str, reason: str) -> None:
        with self._lock:
            self._series[cat.INVALID_EVENTS].cell((signal_name, reason)).inc(1, self._clock())
        if (signal_name, reason) not in self._logged_invalid:
            self._logged_invalid.add((signal_name, reason))
            log.warning("dropped invalid %s event (%s); further ones are only counted",
                        signal_name, reason)

    def _count_overflow(self, spec: MetricSpec) -> None:
        # Called from Series under the aggregator's lock already.
        self._series[cat.SERIES_OVERFLOW].cell((spec.name,)).inc(1, self._clock())

    # -- state ----------------------------------------------------------------

    def _reset_state(self) -> None:
        self._active: dict[str, float] = {}
        now = self._clock()
        self._error_rate_window = CumulativeWindow(*self._window, start=now)
        self._hour_window = CumulativeWindow(3600.0, 60, start=now)
        self.next_roll = min(self._error_rate_window.next_boundary,
                             self._hour_window.next_boundary)
        self._mode = "active"
        self._last_load_ms = 0.0
        self._state_size = 0
        for mode in MODES:
            self._series[cat.MODE].cell((mode,)).set(float(mode == self._mode), self._clock())
        self._series[cat.AGENTS_ACTIVE].cell(()).set(0.0, self._clock())

    # -- windows: totals recorded at slot boundaries (see telemetry.aggregation.windows) ------

    def _agent_totals(self) -> dict[tuple[str, str], float]:
        """Cumulative errors and operations (decisions, handoffs sent, errors) per agent."""
        totals: dict[tuple[str, str], float] = {}
        for series, kind in ((self._errors, "errors"), (self._errors, "operations"),
                             (self._decisions, "operations"), (self._handoffs, "operations")):
            for labels, cell in series.items():
                key = (kind, labels[0])
                totals[key] = totals.get(key, 0.0) + cell.value
        return totals

    def _error_total(self) -> dict[str, float]:
        return {"errors": sum(cell.value for _, cell in self._errors.items())}

    def _roll_windows(self, now: float) -> None:
        """Record totals for every window whose boundary has passed (under the lock)."""
        if self._error_rate_window.due(now):
            self._error_rate_window.record(now, self._agent_totals())
        if self._hour_window.due(now):
            self._hour_window.record(now, self._error_total())
        self.next_roll = min(self._error_rate_window.next_boundary,
                             self._hour_window.next_boundary)

    # -- updates that do not come from signals ---------------------------------

    def inc(self, spec: MetricSpec, labels: tuple = (), amount: float = 1.0) -> None:
        """Add to a counter directly (exporter errors, drops, profiled operations)."""
        with self._lock:
            self._series[spec].cell(labels).inc(amount, self._clock())

    def set(self, spec: MetricSpec, labels: tuple, value: float) -> None:
        with self._lock:
            self._series[spec].cell(labels).set(value, self._clock())

    def observe(self, spec: MetricSpec, labels: tuple, value: float) -> None:
        with self._lock:
            self._series[spec].cell(labels).observe(value, self._clock())

    def count_exporter_error(self, exporter: str) -> None:
        self.inc(cat.EXPORTER_ERRORS, (exporter,))

    def count_dropped(self, component: str, reason: str, amount: int = 1) -> None:
        self.inc(cat.DROPPED, (component, reason), amount)

    def enable_timer_reservoirs(self, size: int) -> None:
        """Keep up to ``size`` observations per histogram series and interval, for
        exporters that send raw timers (StatsD). Off (0) by default, as it costs a
        little per observation."""
        with self._lock:
            for series in self._series.values():
                if series.spec.kind is Kind.HISTOGRAM:
                    series.reservoir_size = max(series.reservoir_size, size)
                    for _, cell in series.items():
                        cell.reservoir_size = series.reservoir_size

    # -- reading ----------------------------------------------------------------

    def collect(self, specs: Iterable[MetricSpec] = cat.CATALOGUE) -> list[Family]:
        """A consistent copy of every series, for exporters to translate."""
        memory, cpu = self._process.sample()
        now = self._clock()
        with self._lock:
            self._series[cat.PROCESS_MEMORY].cell(()).set(memory, now)
            self._series[cat.PROCESS_CPU].cell(()).set(cpu, now)
            self._purge_stale(now)
            # Only plain copies under the lock, so senders wait as little as possible
            # while a large scrape runs; the objects are built after releasing it.
            raw = [(spec, self._copy_cells(self._series[spec])) for spec in specs]
        return [Family(spec, tuple(map(_sample, rows))) for spec, rows in raw]

    @staticmethod
    def _copy_cells(series: Series) -> list[tuple]:
        if series.spec.kind is Kind.HISTOGRAM:
            return [(labels, (*cell.counts, cell.sum), cell.created)
                    for labels, cell in series.cells.items()]
        return [(labels, cell.value, cell.created) for labels, cell in series.cells.items()]

    def _purge_stale(self, now: float) -> None:
        if not self.stale_after_s:
            return
        for spec, series in self._series.items():
            if (spec.labels and not spec.self_metric
                    and spec not in (cat.MODE, cat.ALERTS_FIRING)
                    and series.purge_stale(now - self.stale_after_s)):
                self._handoff_cells.clear()
                self._decision_cells.clear()

    def take_timer_samples(self) -> list[TimerSample]:
        """Hand over every histogram series' reservoir for this interval and reset it."""
        taken = []
        with self._lock:
            for spec, series in self._series.items():
                if spec.kind is not Kind.HISTOGRAM:
                    continue
                for labels, cell in series.items():
                    values, count = cell.take_interval()
                    if count:
                        taken.append(TimerSample(spec, labels, tuple(values), count))
        return taken

    def series_count(self, spec: MetricSpec) -> int:
        with self._lock:
            return len(self._series[spec])

    def value(self, spec: MetricSpec, labels: tuple = ()) -> float:
        """The current value of one counter or gauge series (0 if never seen)."""
        with self._lock:
            cell = self._series[spec].cells.get(tuple(labels))
            return 0.0 if cell is None else cell.value

    def snapshot(self) -> tuple[AgentMetrics, SystemMetrics]:
        """Consistent copies of the story's dataclasses, taken under one lock."""
        memory, cpu = self._process.sample()
        now = self._clock()
        with self._lock:
            return self._agent_metrics(now), self._system_metrics(now, memory, cpu)

    def _by(self, spec: MetricSpec, index: int | None = 0) -> dict:
        totals: dict = {}
        for labels, cell in self._series[spec].items():
            key = labels if index is None else labels[index]
            totals[key] = totals.get(key, 0) + _as_number(cell.value)
        return totals

    def _summary(self, spec: MetricSpec) -> DurationSummary:
        summary = DurationSummary()
        for _, cell in self._series[spec].items():
            counts = tuple(cell.counts)
            summary = summary.merged(DurationSummary(sum(counts), cell.sum, spec.buckets, counts))
        return summary

    def _agent_metrics(self, now: float) -> AgentMetrics:
        handoffs = self._by(cat.HANDOFFS, None)
        decisions = self._by(cat.DECISIONS)
        errors = self._by(cat.ERRORS)
        blocks = self._by(cat.SAFETY_BLOCKS, 1)
        items = self._by(cat.CONTEXT_ITEMS)
        tokens = self._by(cat.CONTEXT_TOKENS)
        self._roll_windows(now)
        in_window = self._error_rate_window.totals(now, self._agent_totals())
        error_rate = {}
        for (kind, agent), operations in in_window.items():
            if kind == "operations":
                failed = in_window.get(("errors", agent), 0.0)
                error_rate[agent] = failed / operations if operations else 0.0
        errors_last_hour = self._hour_window.totals(now, self._error_total())["errors"]
        return AgentMetrics(
            handoffs_total=sum(handoffs.values()),
            decisions_made=sum(decisions.values()),
            errors_total=sum(errors.values()),
            safety_blocks=sum(blocks.values()),
            current_agents_active=len(self._active),
            current_agent=next(reversed(self._active), None),
            context_items_total=sum(items.values()),
            context_tokens_used=sum(tokens.values()),
            handoff_duration=self._summary(cat.HANDOFF_DURATION),
            decision_duration=self._summary(cat.DECISION_DURATION),
            context_refresh_duration=self._summary(cat.CONTEXT_REFRESH_DURATION),
            agent_active_time={a: float(v) for a, v in self._by(cat.AGENT_ACTIVE_TIME).items()},
            agent_error_rate=error_rate,
            errors_last_hour=int(errors_last_hour),
            handoffs_by_pair=handoffs,
            decisions_by_agent=decisions,
            errors_by_agent=errors,
            safety_blocks_by_rule=blocks,
            context_items_by_agent=items,
            context_tokens_by_agent=tokens,
        )

    def _system_metrics(self, now: float, memory: float, cpu: float) -> SystemMetrics:
        outcomes = self._by(cat.WORKFLOWS)
        durations = self._summary(cat.WORKFLOW_DURATION)
        return SystemMetrics(
            memory_usage_mb=memory / (1024 * 1024),
            cpu_usage_percent=cpu,
            workflows_started=int(self._series[cat.WORKFLOWS_STARTED].cell(()).value),
            workflows_completed=outcomes.get("completed", 0),
            workflows_failed=outcomes.get("failed", 0),
            average_workflow_time=durations.mean,
            state_saves_total=int(self._series[cat.STATE_SAVES].cell(()).value),
            state_loads_total=self._summary(cat.STATE_LOAD_DURATION).count,
            state_load_time_ms=self._last_load_ms,
            state_file_size_bytes=self._state_size,
            mode=self._mode,
            uptime_seconds=now - self._started_at,
            events_total=sum(self._by(cat.EVENTS).values()),
            invalid_events_total=sum(self._by(cat.INVALID_EVENTS).values()),
        )

    def invalid_events(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return self._by(cat.INVALID_EVENTS, None)


def _sample(row: tuple) -> Sample:
    labels, value, created = row
    if isinstance(value, tuple):  # a histogram: bucket counts, then the sum
        counts = value[:-1]
        return Sample(labels, HistogramValue(counts, value[-1], sum(counts)), created)
    return Sample(labels, value, created)


def _as_number(value: float) -> int | float:
    """Counts are kept as floats; show whole numbers as ints in snapshots."""
    return int(value) if math.isfinite(value) and value.is_integer() else value
