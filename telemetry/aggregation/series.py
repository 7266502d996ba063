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
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator

from telemetry.catalogue import Kind, MetricSpec

try:  # Cython's own flag: a constant True in the compiled module
    import cython

    _COMPILED = cython.compiled
except ImportError:  # interpreted, and Cython is not installed
    _COMPILED = False

_random = random.random

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


def bucket_index(bounds: tuple[float, ...], value: float) -> int:
    """``bisect_left(bounds, value)``, written as the binary search it is.

    Compiled, the search runs on C doubles (``series.pxd``): about a tenth of what
    ``bisect_left`` costs there, which compares a boxed value with each bound through
    Python's comparison. Interpreted it is the slower of the two, so
    :meth:`HistogramCell.observe` calls it only in a compiled build.
    """
    low, high = 0, len(bounds)
    while low < high:
        middle = (low + high) >> 1
        bound = bounds[middle]
        if bound < value:
            low = middle + 1
        else:
            high = middle
    return low


class HistogramCell:
    """Bucket counts (non-cumulative, last one is +Inf), sum, and an optional reservoir.

    The reservoir keeps at most ``reservoir_size`` observations of the current
    interval, chosen uniformly at random, plus the true interval count:
    enough for a push exporter to send timers with a sample rate that restores the
    true count on the server, in fixed memory.

    It is Vitter's algorithm R: the first ``reservoir_size`` observations are kept,
    and the n-th after them replaces a random one with probability
    ``reservoir_size / n``. That is one random number per observation past a full
    reservoir. Algorithm L skips to the next kept observation instead, but pays
    three random numbers and three logarithms or powers for each one it keeps, and
    at the rates where reservoirs fill (a few thousand observations per series and
    interval) that cost more than it saved: a third of a microsecond per event of
    the reference workflow (``benchmarks/``, overhead).

    What more a cell keeps is switched for all of an aggregator's cells at once
    (``Aggregator.histogram_features``, :meth:`Series.set_histogram_features`):

    * extremes (``tracks_extremes``), while an exporter sends them: ``min`` and
      ``max`` are the smallest and largest observation; NaN when the cell was observed
      before they were tracked (unknown), infinite while it has no observation;
    * exemplars (``exemplar_source``, an :class:`ExemplarSource`), while a tracer
      follows the events: an observation made for an event sent while a sampled span
      was current becomes its bucket's exemplar (the span is read when the event is
      sent); ``exemplars`` is then one ``(value, epoch seconds, trace id, span id)``
      or None per bucket, the latest observation of each, so a latency bucket on a
      dashboard leads to a trace.

    In a compiled build the cell is a C structure (``series.pxd``): its fields are
    typed there, and ``observe`` reads them without a dictionary lookup.
    """

    __slots__ = ("bounds", "counts", "created", "exemplar_source", "exemplars",
                 "interval_count", "max", "min", "reservoir", "reservoir_size", "sum",
                 "tracks_extremes", "updated")

    def __init__(self, bounds: tuple[float, ...], now: float, reservoir_size: int = 0,
                 tracks_extremes: bool = False,
                 exemplar_source: ExemplarSource | None = None) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.created = time.time()
        self.updated = now
        self.reservoir_size = reservoir_size
        self.reservoir: list[float] = []
        self.interval_count = 0
        self.exemplars: list[Exemplar | None] | None = None
        self.exemplar_source = exemplar_source
        self.tracks_extremes = tracks_extremes
        self.min, self.max = (math.inf, -math.inf) if tracks_extremes else (math.nan, math.nan)

    def observe(self, value: float, now: float) -> None:
        index = bucket_index(self.bounds, value) if _COMPILED else bisect_left(self.bounds, value)
        self.counts[index] += 1
        self.sum += value
        self.updated = now
        size = self.reservoir_size
        if size:  # algorithm R's step, written out (see the class doc)
            count = self.interval_count = self.interval_count + 1
            reservoir = self.reservoir
            if len(reservoir) < size:  # not full yet: keep it
                reservoir.append(value)
            else:  # the n-th replaces a random kept one with probability size / n
                slot = _random() * count
                if slot < size:
                    reservoir[int(slot)] = value
        if self.tracks_extremes:
            if value < self.min:  # never true of NaN: unknown extremes stay unknown
                self.min = value
            if value > self.max:
                self.max = value
        source = self.exemplar_source
        if source is not None and source.ids is not None:
            self.keep_exemplar(index, value, source)

    def keep_exemplar(self, index: int, value: float, source: ExemplarSource) -> None:
        """Make the observation ``value`` bucket ``index``'s exemplar, linked to the
        span ``source`` holds."""
        exemplars = self.exemplars
        if exemplars is None:
            exemplars = self.exemplars = [None] * len(self.counts)
        ids = source.ids
        exemplars[index] = (value, source.at, ids[0], ids[1])

    def set_features(self, tracks_extremes: bool, exemplar_source: ExemplarSource | None) -> None:
        """Track the extremes or not, keep exemplars from ``exemplar_source`` or not
        (None). Extremes tracked from now on are unknown (NaN) if the cell was observed
        before."""
        if tracks_extremes and not self.tracks_extremes:
            self.min, self.max = ((math.nan, math.nan) if any(self.counts)
                                  else (math.inf, -math.inf))
        self.tracks_extremes = tracks_extremes
        self.exemplar_source = exemplar_source

    @property
    def count(self) -> int:
        return sum(self.counts)

    def take_interval(self) -> tuple[list[float], int]:
        """Hand over this interval's reservoir and true count, and start a new interval."""
        sample, count = self.reservoir, self.interval_count
        self.reservoir, self.interval_count = [], 0
        return sample, count


Cell = CounterCell | GaugeCell | HistogramCell

#: A bucket's exemplar: (value, epoch seconds, trace id, span id).
Exemplar = tuple[float, float, int, int]


class ExemplarSource:
    """The span the event being recorded links its observations to: what cells that
    keep exemplars read, one per aggregator.

    The aggregator sets it before each event it records (under its lock): ``ids`` is
    (trace id, span id) of the sampled span that was current where and when the event
    was sent, or None, and ``at`` the send's epoch time. Read at the send, not when the
    event is recorded: a queued event is recorded later, on whichever thread records
    the queue, where another span (or none) is current.
    """

    __slots__ = ("at", "ids")

    def __init__(self) -> None:
        self.ids: tuple[int, int] | None = None
        self.at = 0.0


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
        #: What new histogram cells keep besides counts (:meth:`set_histogram_features`).
        self.tracks_extremes = False
        self.exemplar_source: ExemplarSource | None = None

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
            return HistogramCell(self.spec.buckets, now, self.reservoir_size,
                                 self.tracks_extremes, self.exemplar_source)
        if self.spec.kind is Kind.GAUGE:
            return GaugeCell(now)
        return CounterCell(now)

    def set_histogram_features(self, tracks_extremes: bool,
                               exemplar_source: ExemplarSource | None) -> None:
        """What every cell of this histogram series, and every new one, keeps besides
        its counts (see :class:`HistogramCell`)."""
        self.tracks_extremes, self.exemplar_source = tracks_extremes, exemplar_source
        for cell in self.cells.values():
            cell.set_features(tracks_extremes, exemplar_source)

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
