"""Copies of the cells for readers (exporters, the alert evaluator), taken in short holds.

A reader never holds the event lock across all series: it first takes the list of a
series' cells (one hold, a C-level copy of the dict's keys and values), then copies
them ``CHUNK`` cells at a time, each chunk under a hold of its own. A sender waits at
most one chunk's copy, however many series there are.

Why this is as good as one long hold for what readers check:

* each cell is copied whole under the lock, so a histogram's bucket counts, sum and
  count belong to one instant (the count is the sum of the copied counts, so it equals
  the +Inf bucket in every copy);
* cells only grow between two copies of the same cell, so a counter read by two
  successive collections never goes backwards;
* two cells of one large collection may be copied a few chunks apart: a counter and
  the histogram that the same events update may then differ by the events between
  the two copies. A collection of at most ``ONE_HOLD`` cells in all is copied under
  one hold, so that they agree exactly there (:func:`copy_all`).

Between two chunks the reader sleeps for no time: a sender waiting for the
interpreter then runs at once, rather than at the interpreter's next forced switch
(``sys.getswitchinterval()``, 5 ms). That costs the reader a system call per chunk
when nobody waits, and makes it wait its turn when a sender is busy: senders come
first.

A cell created after the list was taken is in the next collection; a cell purged
after it was taken (``limits.stale_series_after_s``, done by ``collect`` itself) is
copied one last time. Both are as if the collection had run a moment earlier or later.

A copy is either a series' columns (:class:`SeriesCopy`, :func:`copy_series`: no
object per cell but the tuples of numbers of histogram values, which the garbage
collector stops tracking), what the exporters, the exposition writer, the alert
history and the snapshot read, so that a 10,000-series read makes the collector run no
full collection (``benchmarks/``, collection); or, for :meth:`Aggregator.collect`,
one frozen :class:`~telemetry.model.Sample` per cell.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from telemetry.aggregation.series import Cell, HistogramCell, Series
from telemetry.catalogue import Kind, MetricSpec
from telemetry.model import HistogramValue, Sample

#: Cells copied per hold of the event lock: a sender waits at most one chunk's copy
#: (about 0.4 ms for 128 histograms on a loaded 2-core host).
CHUNK = 128

#: A collection of at most this many cells in all is copied under one hold (about a
#: millisecond): then it is one instant, across series too, as every collection was
#: before chunks (a counter and the histogram the same events update agree exactly).
ONE_HOLD = 1024

T = TypeVar("T")


class SeriesCopy(NamedTuple):
    """One series copied as columns (:func:`copy_series`): ``labels[i]``, ``values[i]``
    and ``created[i]`` are one cell's. A histogram's value is a tuple of its bucket
    counts (non-cumulative, +Inf last) then its sum; ``extremes[i]`` is its (min, max)
    or None, and ``exemplars[i]`` its exemplars or None (both lists are None for
    counters and gauges).

    The columns hold no object per cell but the value tuples of histograms, which the
    garbage collector stops tracking at its next young collection: a reader of 10,000
    series adds three lists to what the collector walks, not 10,000 objects."""

    spec: MetricSpec
    labels: list[tuple[str, ...]]
    values: list[Any]
    created: list[float]
    extremes: list[tuple[float, float] | None] | None = None
    exemplars: list[tuple | None] | None = None


def copy_all(series: list[Series], lock: Any, copy: Callable[..., T]) -> list[T]:
    """``copy(one series, lock[, chunk])`` for each of ``series``: under one hold of
    ``lock`` when they have at most ``ONE_HOLD`` cells in all, else a chunk at a time."""
    if sum(map(len, series)) <= ONE_HOLD:
        with lock:
            return [copy(one, lock, ONE_HOLD) for one in series]
    return [copy(one, lock) for one in series]


def copy_series(series: Series, lock: Any, chunk: int = CHUNK) -> SeriesCopy:
    """Every cell of ``series`` as columns (:class:`SeriesCopy`), ``chunk`` cells per
    hold of ``lock``. Labels and creation times are the cells' own objects: they never
    change once a cell exists, so they are read without the lock."""
    cells = series.cells
    with lock:
        labels, live = list(cells), list(cells.values())
    created = [cell.created for cell in live]
    histogram = series.spec.kind is Kind.HISTOGRAM
    values: list[Any] = []
    extremes: list[Any] | None = [] if histogram else None
    exemplars: list[Any] | None = [] if histogram else None
    for start in range(0, len(live), chunk):
        if start:
            time.sleep(0)  # let a waiting sender run now: see the module doc
        part = live[start:start + chunk]
        with lock:
            if not histogram:
                values.extend([cell.value for cell in part])
                continue
            values.extend([(*cell.counts, cell.sum) for cell in part])
            extremes.extend([(cell.min, cell.max) if cell.min <= cell.max else None
                             for cell in part])
            exemplars.extend([cell.exemplars and tuple(cell.exemplars) for cell in part])
    return SeriesCopy(series.spec, labels, values, created, extremes, exemplars)


def chunked(series: Series, lock: Any, copy: Callable[[tuple[str, ...], Any], T],
            chunk: int = CHUNK) -> list[T]:
    """``copy(labels, cell)`` of every cell of ``series``, ``chunk`` cells per hold of
    ``lock`` (see the module doc)."""
    cells = series.cells
    with lock:
        keys, values = list(cells), list(cells.values())
    if len(keys) <= chunk:
        with lock:
            return list(map(copy, keys, values))
    copies: list[T] = []
    for start in range(0, len(keys), chunk):
        if start:
            time.sleep(0)  # let a waiting sender run now: see the module doc
        end = start + chunk
        with lock:
            copies.extend(map(copy, keys[start:end], values[start:end]))
    return copies


def samples(series: Series, lock: Any, chunk: int = CHUNK) -> tuple[Sample, ...]:
    """Every cell of ``series`` as a :class:`~telemetry.model.Sample`, in short holds."""
    histogram = series.spec.kind is Kind.HISTOGRAM
    return tuple(chunked(series, lock, _histogram_sample if histogram else _plain_sample,
                         chunk))


def _plain_sample(labels: tuple[str, ...], cell: Cell) -> Sample:
    return Sample(labels, cell.value, cell.created)


def _histogram_sample(labels: tuple[str, ...], cell: HistogramCell) -> Sample:
    counts = tuple(cell.counts)
    low, high = cell.min, cell.max
    if low <= high:
        value = HistogramValue(counts, cell.sum, sum(counts),
                               cell.exemplars and tuple(cell.exemplars), low, high)
    else:
        value = HistogramValue(counts, cell.sum, sum(counts),
                               cell.exemplars and tuple(cell.exemplars))
    return Sample(labels, value, cell.created)
