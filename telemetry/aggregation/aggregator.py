"""The aggregator: the one receiver of every signal, and the state exporters read.

Per event (:mod:`telemetry.aggregation.receiver`): the payload check derived from the
contract (:func:`telemetry.validation.payload_check`), then, under the lock, the
signal's handler from :data:`~telemetry.aggregation.handlers.table.HANDLERS` making O(1)
updates to cached cells; queued and recorded in batches while no listener needs each
event in line, and every read records the queue first. Exporters never run here: they
call :meth:`Aggregator.copy_series` (or :meth:`Aggregator.take_timer_samples`) on their own
schedule.

blinker propagates receiver exceptions to the sender and holds receivers weakly by
default, so the aggregator connects strongly and catches every ``Exception``: an
invalid payload is counted and logged once per (signal, reason); it never reaches
the orchestrator. An interrupt (``KeyboardInterrupt``, ``SystemExit``) does reach it,
as it should, and leaves no lock held. A re-entrant event (a signal handler or a
finalizer sending while this thread is inside an update) is queued and recorded
right after the update it interrupted (:mod:`telemetry.aggregation.reentry`).
"""

from __future__ import annotations

import collections
import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import blinker

from telemetry import catalogue as cat
from telemetry.aggregation import collection
from telemetry.aggregation import snapshot as snap
from telemetry.aggregation.followers import EventListener, Follower, Followers
from telemetry.aggregation.handlers import operations as ops
from telemetry.aggregation.handlers.table import HANDLERS, OBSERVES_HISTOGRAM
from telemetry.aggregation.process import ProcessSampler, WallOffset
from telemetry.aggregation.receiver import QUEUE_BATCH, make_receiver
from telemetry.aggregation.reentry import EventGuard, then_deferred
from telemetry.aggregation.series import ExemplarSource
from telemetry.aggregation.state import AggregateState
from telemetry.catalogue import MetricSpec
from telemetry.metrics import AgentMetrics, SystemMetrics
from telemetry.model import Family, TimerSample
from telemetry.signals import CONTRACT

log = logging.getLogger("telemetry.aggregator")


class Aggregator:
    """Turns signals into metric cells and snapshot dataclasses.

    ``clock`` is the monotonic time used for windows, staleness and the operator
    state (tests inject a fake, and may inject ``wall_clock`` too); event timestamps
    come from the signals themselves and are accepted within ``timestamp_window_s``
    of the wall clock. ``loop_window``, ``repeat_threshold``,
    ``max_workflows_in_flight`` and ``prices`` are the ``operations`` settings
    (:mod:`telemetry.aggregation.handlers.operations`).
    """

    def __init__(
        self,
        *,
        max_series: int = 1000,
        max_label_length: int = 128,
        error_rate_window_s: float = 300.0,
        window_buckets: int = 30,
        stale_after_s: float | None = None,
        timestamp_window_s: float = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        loop_window: int = 4,
        repeat_threshold: int = 3,
        max_workflows_in_flight: int = 10000,
        prices: ops.Prices | None = None,
    ) -> None:
        self._guard = EventGuard()
        #: Events waiting to be recorded: (record, fields, send time, exemplar ids);
        #: see the receiver.
        self._queue: collections.deque[tuple[Callable[..., Any], dict[str, Any], float,
                                             tuple[int, int] | None]] = collections.deque()
        #: What histogram cells that keep exemplars read (set per recorded event).
        self._exemplar = ExemplarSource()
        self._clock = clock
        self._wall = WallOffset(clock, wall_clock)
        self.max_series = max_series
        self.stale_after_s = stale_after_s
        self.timestamp_window_s = timestamp_window_s
        self.state = AggregateState.build(
            max_series=max_series, max_label_length=max_label_length,
            on_overflow=self._count_overflow, clock=clock, loop_window=loop_window,
            repeat_threshold=repeat_threshold, max_workflows_in_flight=max_workflows_in_flight,
            prices=prices)
        self._series = self.state.series
        self.state.wall_offset = self._wall.offset
        self._windows = snap.AgentWindows(error_rate_window_s, window_buckets, start=clock())
        #: Who follows and who listens (the tracer, profiling).
        self._followers = Followers(self._listener_failed)
        self._receivers: dict[str, Callable[..., None]] = {}
        self._connected = False
        #: Queued events an interrupt cut short (see record_queued).
        self._interrupted = 0
        self._logged_invalid: set[tuple[str, str]] = set()
        self._handler_time = self._series[cat.HANDLER_TIME].cell(())
        self._series[cat.SPANS_EXPORTED].cell(())  # 0 from the start, like the above
        #: Who reads histogram exemplars and extremes now (histogram_features).
        self._histogram_readers = {"exemplars": 0, "min_max": 0}
        self._process = ProcessSampler()
        self._started_at = clock()
        self.state.reset(clock())

    @property
    def _lock(self) -> Any:
        """The aggregator's lock (re-entrant; take it with ``with``, or as
        :mod:`telemetry.aggregation.reentry` shows)."""
        return self._guard.lock

    # -- wiring ---------------------------------------------------------------

    def connect(self) -> None:
        """Subscribe to every signal of the contract (strongly: see the module doc)."""
        self._queue.clear()  # what a send racing the last disconnect() left
        self._followers.pending.clear()
        self._connected = True
        for spec in CONTRACT:
            if spec.name in self._receivers:
                continue
            receiver = make_receiver(self, spec, HANDLERS[spec.name])
            self._receivers[spec.name] = receiver
            blinker.signal(spec.name).connect(receiver, weak=False)
        self._configure_receivers()

    def disconnect(self) -> None:
        """Stop receiving. An event a signal handler interrupted before it reached the
        lock is dropped too, so a final flush made after this call has every event
        that will ever be recorded: the queued events are recorded first."""
        for name, receiver in self._receivers.items():
            blinker.signal(name).disconnect(receiver)
        self._receivers.clear()
        self.record_queued()
        self._connected = False

    def renew_locks(self) -> None:
        """Fresh locks for a forked child, where a parent thread may have held them.
        The queued events are the parent's to record: the child forgets its copy."""
        self._queue.clear()
        self._followers.pending.clear()
        self._guard.renew()
        self._process = ProcessSampler()

    def add_listener(self, listener: EventListener) -> None:
        """Also pass every accepted event to ``listener`` (profiling's thread notes,
        slow-operation capture; the tracer follows instead: :meth:`follow`).

        Listeners run after the metrics update, outside the lock; their exceptions
        are logged and counted, never raised. Events are recorded in line from now on
        (:mod:`telemetry.aggregation.receiver`), after the queued ones.
        """
        self.record_queued()
        self._followers.listeners += (listener,)
        self._configure_receivers()

    def remove_listener(self, listener: EventListener) -> None:
        self._followers.listeners = tuple(
            item for item in self._followers.listeners if item is not listener)
        self._configure_receivers()

    def follow(self, follower: Follower) -> None:
        """Run ``follower``'s handlers after the metrics update of every accepted event,
        under this aggregator's lock, in order (:mod:`telemetry.aggregation.followers`).
        Events queued before are recorded first, not followed; call it again when the
        follower's settings change."""
        self.record_queued()
        if follower not in self._followers.followers:
            self._followers.followers += (follower,)
        self._configure_receivers()

    def unfollow(self, follower: Follower) -> None:
        """Stop running ``follower``'s handlers, once the queued events are followed."""
        self.record_queued()
        self._followers.followers = tuple(
            item for item in self._followers.followers if item is not follower)
        self._configure_receivers()

    def _configure_receivers(self) -> None:
        exemplars = OBSERVES_HISTOGRAM if self._histogram_readers["exemplars"] else frozenset()
        self._followers.configure(self._receivers.items(), exemplars, QUEUE_BATCH)

    @then_deferred
    def histogram_features(self, *, exemplars: bool | None = None,
                           min_max: bool | None = None) -> None:
        """A reader of histogram exemplars (the tracer) or extremes (the OTLP exporter)
        starts (True) or stops (False): the histogram cells keep what is read, and
        stop keeping it when nobody reads it. Events
        queued before were observed before the switch: they are recorded first."""
        self.record_queued()
        with self._guard.lock:
            readers = self._histogram_readers
            for feature, on in (("exemplars", exemplars), ("min_max", min_max)):
                if on is not None:
                    readers[feature] = max(readers[feature] + (1 if on else -1), 0)
            self.state.set_histogram_features(
                readers["min_max"] > 0, self._exemplar if readers["exemplars"] > 0 else None)
        self._configure_receivers()

    def _listener_failed(self, listener: EventListener) -> None:
        """Count a listener's exception (being handled) and log the first of each."""
        self.count_dropped("listener", "exception")
        name = getattr(listener, "__qualname__", repr(listener))
        if self._first(("listener", name)):
            log.exception("telemetry listener %s failed; further failures are only counted",
                          name)

    def _count_invalid(self, signal_name: str, reason: str) -> None:
        self.inc(cat.INVALID_EVENTS, (signal_name, reason))
        if self._first((signal_name, reason)):
            log.warning("dropped invalid %s event (%s); further ones are only counted",
                        signal_name, reason)

    def _first(self, key: tuple[str, str]) -> bool:
        """Whether ``key`` is seen for the first time (then logged; later only counted)."""
        if key in self._logged_invalid:
            return False
        self._logged_invalid.add(key)
        return True

    def _count_overflow(self, spec: MetricSpec) -> None:
        # Called from Series under the aggregator's lock already.
        self._series[cat.SERIES_OVERFLOW].cell((spec.name,)).inc(1, self._clock())

    @then_deferred
    def record_queued(self) -> None:
        """Record the queued events in order under one hold of the lock, unless this
        thread is mid-update (the events wait for the next batch or read). Only the
        events queued when it starts: senders on other threads cannot keep it here.

        An interrupt (``KeyboardInterrupt``) landing here reaches the sender, as in any
        code it calls; the event being recorded then is lost, perhaps half recorded,
        and counted as dropped (aggregator, interrupted); the rest stay queued."""
        queue, guard = self._queue, self._guard
        if not queue or guard.held_here():
            return
        lock, take = guard.lock, queue.popleft
        recording = False
        try:  # taken inside the `try`: see telemetry.aggregation.reentry
            lock.acquire()
            started = time.perf_counter()
            followers = self._followers
            exemplar = self._exemplar if followers.followers else None
            if exemplar is not None:
                followers.before_events()
            offset = self.state.wall_offset
            # Read once per batch: its events were queued before it started, so that
            # decides whether they count (disconnect() records the queue, then clears it).
            connected = self._connected
            for _ in range(len(queue)):
                record, fields, now, ids = take()
                if connected:  # else: sent while disconnect() ran
                    recording = True
                    if exemplar is not None:
                        exemplar.ids, exemplar.at = ids, now + offset
                    record(fields, now)
                    recording = False
            followers.run_recorded()
            self._handler_time.value += time.perf_counter() - started
        finally:
            if recording:
                self._interrupted += 1
            try:  # noqa: SIM105
                lock.release()
            except RuntimeError:  # interrupted before it was taken
                pass

    def run_pending(self) -> None:
        """Record the queued events and what re-entrant calls deferred, unless this
        thread is mid-update; reads call it first so they include it."""
        self.record_queued()
        guard = self._guard
        if guard.pending and not guard.held_here():
            guard.run_pending()
        if guard.dropped:
            dropped, guard.dropped = guard.dropped, 0
            self.count_dropped("aggregator", "reentry_queue_full", dropped)
        if self._interrupted:
            interrupted, self._interrupted = self._interrupted, 0
            self.count_dropped("aggregator", "interrupted", interrupted)

    # -- updates that do not come from signals ---------------------------------

    def inc(self, spec: MetricSpec, labels: tuple = (), amount: float = 1.0) -> None:
        """Add to a counter directly (exporter errors, drops, profiled operations)."""
        self._update(spec, labels, lambda cell, now: cell.inc(amount, now))

    def set(self, spec: MetricSpec, labels: tuple, value: float) -> None:
        self._update(spec, labels, lambda cell, now: cell.set(value, now))

    def observe(self, spec: MetricSpec, labels: tuple, value: float) -> None:
        self._update(spec, labels, lambda cell, now: cell.observe(value, now))

    @then_deferred
    def _update(self, spec: MetricSpec, labels: tuple,
                change: Callable[[Any, float], None]) -> None:
        """``change(cell, now)`` under the lock, or deferred on re-entry."""
        if self._guard.held_here():
            self._guard.defer(functools.partial(self._update, spec, labels, change))
            return
        with self._guard.lock:
            change(self._series[spec].cell(labels), self._clock())

    def count_exporter_error(self, exporter: str) -> None:
        self.inc(cat.EXPORTER_ERRORS, (exporter,))

    def count_dropped(self, component: str, reason: str, amount: int = 1) -> None:
        self.inc(cat.DROPPED, (component, reason), amount)

    @then_deferred
    def enable_timer_reservoirs(self, size: int) -> None:
        """Keep up to ``size`` observations per histogram series and interval, for
        exporters that send raw timers (StatsD). Off (0) by default, as it costs a
        little per observation."""
        with self._guard.lock:
            self.state.keep_reservoirs(size)

    # -- reading ----------------------------------------------------------------
    # A read from a signal handler or finalizer that interrupted an update on this
    # same thread does not wait (the lock is re-entrant) and changes nothing: it sees
    # every event recorded before, and perhaps part of the one being recorded.

    @then_deferred
    def collect(self, specs: Iterable[MetricSpec] = cat.CATALOGUE) -> list[Family]:
        """A copy of every series of ``specs``, one :class:`~telemetry.model.Sample` per
        cell: for code that wants objects (prometheus_client's collector, kept for
        comparison; applications). The exporters read :meth:`copy_series`.

        The lock is never held across all series: the gauges filled at collection are
        set under one short hold, then each series is copied a chunk of cells at a
        time (:mod:`telemetry.aggregation.collection`, which says why that is as
        consistent as readers need)."""
        self._prepare_collection()
        specs = list(specs)
        copied = collection.copy_all([self._series[spec] for spec in specs], self._guard.lock,
                                     collection.samples)
        return [Family(spec, samples) for spec, samples in zip(specs, copied, strict=True)]

    @then_deferred
    def copy_series(self, specs: Iterable[MetricSpec] = cat.CATALOGUE,
                    ) -> list[collection.SeriesCopy]:
        """:meth:`collect`'s copies as columns (:class:`~telemetry.aggregation.collection.
        SeriesCopy`): no object per cell, for readers of many series (the exposition
        writer, the alert history); taken in the same short holds."""
        self._prepare_collection()
        return collection.copy_all([self._series[spec] for spec in specs], self._guard.lock,
                                   collection.copy_series)

    def _prepare_collection(self) -> None:
        """What every collection starts with: deferred events recorded, the process
        and operations gauges filled, stale label sets purged, the windows rolled."""
        self.run_pending()
        memory, cpu = self._process.sample()
        now = self._clock()
        self.state.wall_offset = wall_offset = self._wall.update()
        reentrant = self._guard.held_here()
        with self._guard.lock:
            self._series[cat.PROCESS_MEMORY].cell(()).set(memory, now)
            self._series[cat.PROCESS_CPU].cell(()).set(cpu, now)
            if not reentrant:  # an interrupted update may be changing the tables
                ops.fill_gauges(self.state, now, wall_offset)
            if not reentrant and self.stale_after_s:  # it may hold a cell a purge drops
                self.state.purge_stale(now - self.stale_after_s)
        self._windows.roll(now, self.state, self._guard)

    @then_deferred
    def take_timer_samples(self) -> list[TimerSample]:
        """Hand over every histogram series' reservoir for this interval and reset it.

        Nothing is taken by a re-entrant call: an interrupted observation may be
        writing into a reservoir; its values wait for the next call."""
        self.run_pending()
        if self._guard.held_here():
            return []
        with self._guard.lock:
            return self.state.take_timer_samples()

    @then_deferred
    def series_count(self, spec: MetricSpec) -> int:
        self.run_pending()
        with self._guard.lock:
            return len(self._series[spec])

    @then_deferred
    def value(self, spec: MetricSpec, labels: tuple = ()) -> float:
        """The current value of one counter or gauge series (0 if never seen)."""
        self.run_pending()
        with self._guard.lock:
            cell = self._series[spec].cells.get(tuple(labels))
            return 0.0 if cell is None else cell.value

    @then_deferred
    def snapshot(self) -> tuple[AgentMetrics, SystemMetrics]:
        """The story's dataclasses, from copies taken in short holds of the lock
        (:mod:`telemetry.aggregation.snapshot`)."""
        self.run_pending()
        memory, cpu = self._process.sample()
        now = self._clock()
        self._windows.roll(now, self.state, self._guard)
        return snap.take(self.state, self._guard.lock, self._windows, now,
                         now - self._started_at, memory, cpu)

    @then_deferred
    def invalid_events(self) -> dict[tuple[str, str], int]:
        self.run_pending()
        with self._guard.lock:
            return snap.by_label(self.state, cat.INVALID_EVENTS, None)


__all__ = ["Aggregator", "EventListener"]
