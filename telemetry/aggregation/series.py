"""Labelled series: the cached in-memory cells every event updates.

A :class:`Series` holds one catalogue metric's cells, keyed by label values. The
per-event path is one dict lookup on the raw label tuple and an O(1) update of the
cell it finds. Label values are sanitised and length-capped once, when a label set
is first seen; past ``max_series`` label sets, updates go to a single overflow cell
whose label values are all ``__overflow__``, and the series counts them.

Cells are not locked: the aggregator holds its lock around every update and read.
"""

from __future__ import annotations

import math
import random
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from telemetry.catalogue import Kind, MetricSpec

OVERFLOW_VALUE = "__overflow__"
EMPTY_VALUE = "__empty__"
_CONTROL = {c: None for c in range(32)} | {127: None}


def sanitize_label_value(value: object, max_length: int) -> str:
    """Make ``value`` safe as a label value: text, no control characters, capped.

    Capped values keep a visible marker so two long names that differ only in the
    tail do not silently look identical in a dashboard legend. Lone surrogates (what
    ``os.fsdecode`` and ``surrogateescape`` make of undecodable bytes) become "?":
    they cannot be encoded as UTF-8, so one of them would break every scrape.
    """
    text = str(value).translate(_CONTROL).strip()
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    if not text:
        return EMPTY_VALUE
    if len(text) > max_length:
        text = text[: max(max_length - 1, 1)] + "…"
    return text


def _uniform() -> float:
    """A uniform number in (0, 1]: safe to take the log of."""
    return 1.0 - random.random()


class CounterCell:
    __slots__ = ("created", "updated", "value")

    def __init__(self, now: float) -> None:
        self.value = 0.0
        self.created = time.time()
        self.updated = now

    def inc(self, amount: float, now: float) -> None:
        self.value += amount
        self.updated = now


class GaugeCell(CounterCell):
    __slots__ = ()

    def set(self, value: float, now: float) -> None:
        self.value = value
        self.updated = now


class HistogramCell:
    """Bucket counts (non-cumulative, last one is +Inf), sum, and an optional reservoir.

    The reservoir keeps at most ``reservoir_size`` observations of the current
    interval, chosen uniformly at random, plus the true interval count:
    enough for a push exporter to send timers with a sample rate that restores the
    true count on the server, in fixed memory.

    While tracing runs (:func:`keep_exemplars`), an observation made while a sampled
    span is current also becomes its bucket's exemplar: ``exemplars`` is then one
    ``(value, epoch seconds, trace id, span id)`` or None per bucket, the latest
    observation of each, so a latency bucket on a dashboard leads to a trace.

    While an exporter sends them (:func:`track_min_max`), ``min`` and ``max`` are the
    smallest and largest observation of the cell; NaN when it was observed before
    tracking began (its extremes are unknown), infinite while it has no observation.
    """

    __slots__ = ("_next_sample", "_weight", "bounds", "counts", "created", "exemplars",
                 "interval_count", "max", "min", "reservoir", "reservoir_size", "sum",
                 "updated")

    def __init__(self, bounds: tuple[float, ...], now: float, reservoir_size: int = 0) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.created = time.time()
        self.updated = now
        self.reservoir_size = reservoir_size
        self.reservoir: list[float] = []
        self.interval_count = 0
        self._next_sample = 1  # interval_count of the next observation to keep
        self._weight = 0.0
        self.exemplars: list[Exemplar | None] | None = None
        self.min, self.max = (math.inf, -math.inf) if _min_max_users else (math.nan, math.nan)

    def observe(self, value: float, now: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.updated = now
        if self.reservoir_size:
            self.interval_count += 1
            if self.interval_count >= self._next_sample:
                self._sample(value)

    def observe_keeping_exemplar(self, value: float, now: float) -> None:
        """:meth:`observe`, and the bucket's exemplar when a sampled span is current:
        what ``observe`` is while :func:`keep_exemplars` is on (no cost otherwise)."""
        index = bisect_left(self.bounds, value)
        self.counts[index] += 1
        self.sum += value
        self.updated = now
        if self.reservoir_size:
            self.interval_count += 1
            if self.interval_count >= self._next_sample:
                self._sample(value)
        ids = _current_span_ids()
        if ids is not None:
            exemplars = self.exemplars
            if exemplars is None:
                exemplars = self.exemplars = [None] * len(self.counts)
            exemplars[index] = (value, time.time(), ids[0], ids[1])

    def _sample(self, value: float) -> None:
        # Vitter's algorithm L: the gap to the next kept observation is drawn once,
        # so observations in between cost one comparison and no random number.
        size = self.reservoir_size
        if len(self.reservoir) < size:
            self.reservoir.append(value)
            self._next_sample = self.interval_count + 1
            if len(self.reservoir) == size:
                self._weight = math.exp(math.log(_uniform()) / size)
                self._next_sample = self._gap_after(self.interval_count)
            return
        self.reservoir[int(random.random() * size)] = value
        self._weight *= math.exp(math.log(_uniform()) / size)
        self._next_sample = self._gap_after(self.interval_count)

    def _gap_after(self, index: int) -> int:
        if self._weight >= 1.0:
            return index + 1
        return index + int(math.log(_uniform()) / math.log1p(-self._weight)) + 1

    @property
    def count(self) -> int:
        return sum(self.counts)

    def take_interval(self) -> tuple[list[float], int]:
        """Hand over this interval's reservoir and true count, and start a new interval."""
        sample, count = self.reservoir, self.interval_count
        self.reservoir, self.interval_count, self._next_sample = [], 0, 1
        return sample, count


    def _start_extremes(self, value: float) -> None:
        """A cell made before extremes were tracked starts tracking them at its first
        observation; one observed before keeps unknown extremes (NaN)."""
        if not any(self.counts):
            self.min = self.max = value

    def observe_min_max(self, value: float, now: float) -> None:
        """:meth:`observe`, tracking the extremes (while :func:`track_min_max` is on)."""
        low = self.min
        if value < low:
            self.min = value
        elif low != low:  # NaN: made before tracking began
            self._start_extremes(value)
        if value > self.max:
            self.max = value
        _plain_observe(self, value, now)

    def observe_min_max_keeping_exemplar(self, value: float, now: float) -> None:
        """:meth:`observe_keeping_exemplar`, tracking the extremes."""
        low = self.min
        if value < low:
            self.min = value
        elif low != low:  # NaN: made before tracking began
            self._start_extremes(value)
        if value > self.max:
            self.max = value
        _exemplar_observe(self, value, now)


Cell = CounterCell | GaugeCell | HistogramCell

#: A bucket's exemplar: (value, epoch seconds, trace id, span id).
Exemplar = tuple[float, float, int, int]


def _no_span() -> None:
    return None


#: ``() -> (trace id, span id) | None``: the sampled span current on this thread or task.
_current_span_ids: Callable[[], Any] = _no_span
_plain_observe = HistogramCell.observe
_exemplar_observe = HistogramCell.observe_keeping_exemplar
_keepers: list[Callable[[], Any]] = []
_keepers_lock = threading.Lock()
#: Exporters sending histogram extremes now (:func:`track_min_max`).
_min_max_users = 0


def _choose_observe() -> None:
    """``HistogramCell.observe``: the plain update unless exemplars or extremes are
    wanted, so what nobody reads costs nothing per observation."""
    variants = {(False, False): _plain_observe, (True, False): _exemplar_observe,
                (False, True): HistogramCell.observe_min_max,
                (True, True): HistogramCell.observe_min_max_keeping_exemplar}
    HistogramCell.observe = variants[bool(_keepers), bool(_min_max_users)]  # type: ignore[method-assign]


def track_min_max(on: bool) -> None:
    """An exporter that sends histogram extremes starts (True) or stops (False)."""
    global _min_max_users
    with _keepers_lock:
        _min_max_users = max(_min_max_users + (1 if on else -1), 0)
        _choose_observe()


def keep_exemplars(current_span_ids: Callable[[], Any]) -> None:
    """Keep exemplars from now on, with ``current_span_ids`` telling the span current
    at each observation (the tracer calls this when it starts; the class's ``observe``
    becomes :meth:`HistogramCell.observe_keeping_exemplar`)."""
    global _current_span_ids
    with _keepers_lock:
        _keepers.append(current_span_ids)
        _current_span_ids = current_span_ids
        _choose_observe()


def stop_keeping_exemplars(current_span_ids: Callable[[], Any]) -> None:
    """Undo one :func:`keep_exemplars`; the plain ``observe`` is back after the last.
    Exemplars kept so far stay with their cells."""
    global _current_span_ids
    with _keepers_lock:
        if current_span_ids in _keepers:
            _keepers.remove(current_span_ids)
        _current_span_ids = _keepers[-1] if _keepers else _no_span
        _choose_observe()


class Series:
    """All label sets of one metric, bounded by ``max_series``."""

    def __init__(
        self,
        spec: MetricSpec,
        *,
        max_series: int = 1000,
        max_label_length: int = 128,
        reservoir_size: int = 0,
        on_overflow: Callable[[MetricSpec], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.max_series = max_series
        self.max_label_length = max_label_length
        self.reservoir_size = reservoir_size
        self._on_overflow = on_overflow
        self._clock = clock
        self.cells: dict[tuple[str, ...], Cell] = {}
        # Raw label tuples seen on the wire -> their cell. Several raw tuples may
        # sanitise to one cell; the route is bounded so junk input cannot grow it.
        self.route: dict[tuple, Cell] = {}
        self._overflow_key = (OVERFLOW_VALUE,) * len(spec.labels)

    def cell(self, key: tuple) -> Cell:
        """The cell for raw label values ``key``.

        A label set seen before is one lookup of ``key`` in the route table.
        """
        return self.route.get(key) or self.admit(key)

    def admit(self, key: tuple) -> Cell:
        """Find or create the cell for a label set not seen before (or overflowing)."""
        clean = tuple(sanitize_label_value(v, self.max_label_length) for v in key)
        found = self.cells.get(clean)
        if found is None:
            if len(self.cells) >= self.max_series + (self._overflow_key in self.cells):
                return self._overflow()
            found = self.cells[clean] = self._new_cell()
        if len(self.route) < 2 * self.max_series and self._short(key):
            self.route[key] = found
        return found

    def _short(self, key: tuple) -> bool:
        """Whether ``key`` may be kept as a route: only names no longer than a label
        may be, so the route holds at most ``2 * max_series`` short tuples however long
        the names senders send (a long name is capped again on each event instead)."""
        limit = self.max_label_length
        return all(type(value) is str and len(value) <= limit for value in key)

    def is_overflow(self, cell: Cell) -> bool:
        return cell is self.cells.get(self._overflow_key)

    def _overflow(self) -> Cell:
        if self._on_overflow is not None:
            self._on_overflow(self.spec)
        found = self.cells.get(self._overflow_key)
        if found is None:
            found = self.cells[self._overflow_key] = self._new_cell()
        return found

    def _new_cell(self) -> Cell:
        now = self._clock()
        if self.spec.kind is Kind.HISTOGRAM:
            return HistogramCell(self.spec.buckets, now, self.reservoir_size)
        if self.spec.kind is Kind.GAUGE:
            return GaugeCell(now)
        return CounterCell(now)

    def items(self) -> Iterator[tuple[tuple[str, ...], Cell]]:
        return iter(self.cells.items())

    def __len__(self) -> int:
        return len(self.cells)

    def purge_stale(self, older_than: float) -> int:
        """Drop label sets last updated before ``older_than`` (clock time); return how many."""
        stale = [key for key, cell in self.cells.items() if cell.updated < older_than]
        if not stale:
            return 0
        for key in stale:
            del self.cells[key]
        live = set(map(id, self.cells.values()))
        for raw in [raw for raw, cell in self.route.items() if id(cell) not in live]:
            del self.route[raw]  # in place: the aggregator holds this dict
        return len(stale)

    def clear(self) -> None:
        self.cells.clear()
        self.route.clear()
