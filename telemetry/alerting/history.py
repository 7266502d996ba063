"""The alert evaluator's history: what each windowed expression needs, in bounded memory.

A rate, increase, ratio or quantile reads ``sum by (by) (rate(metric{match}[W]))``
(a quantile per bucket). Prometheus keeps every series and sums at query time; the
:class:`SampleRing` sums first, at each sample, over the label sets the expression
sums away. Each (metric, kept labels) pair is a :class:`View`: its label sets are the
series' with every label neither in ``by`` nor in ``match`` blanked (``""``, never a
label value: those are sanitised to ``__empty__``), and at each sample it stores one
row per such label set. With the built-in alerts, 10,000 handoff series are one row
of bucket columns, not 10,000 histograms.

Summing first gives what summing last gives, because each row is itself a counter
that behaves as Prometheus' per-series arithmetic expects:

* series are grouped by when they were first seen (their *birth* sample): a row
  holds only series present at the same samples, so a series born inside a window
  starts its own row and is extrapolated from its own first sample, as Prometheus
  does; once every window's first sample is after a birth, its rows merge at read
  time (:meth:`View.points`);
* a series whose value went down (a counter reset: in process, a purged and
  re-created series) or that disappeared adds its last value to its row's
  *offset*, so the row never goes down; that is Prometheus' reset correction,
  applied before summing;
* what is not linear in the sum is the extrapolation towards a counter's zero
  (``extrapolated_rate``): it differs only for a series whose value at the window's
  first sample is below ~5 % of its increase in the window, and only when the
  window does not start on a sample (promtool's tests, where it does, agree exactly:
  ``tests/unit/alerting/test_promql.py``).

A row unchanged since the previous sample is the previous sample's object, and a
sample whose rows are all unchanged is the previous sample's dict. The total number of
stored rows is capped (``max_rows``): past it, the oldest samples of the largest view
are dropped and counted (``on_drop``; the evaluator counts them in
``yolo_telemetry_dropped_total{component="alerting",reason="history_full"}`` and shows
them in /health).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from telemetry.catalogue import Kind, MetricSpec
from telemetry.model import Family, HistogramValue

Labels = tuple[str, ...]
Value = float | HistogramValue
#: A row of a view: (birth sample time, or -inf once older than the retention; labels).
RowKey = tuple[float, Labels]
#: The label names a view keeps.
Keep = frozenset[str]

BLANK = ""
_OLD = -math.inf


@dataclass(frozen=True)
class Snapshot:
    """One collection: time (monotonic seconds), wall-clock time (epoch seconds, what
    an age is measured from) and every series of the metrics read as they are now."""

    t: float
    series: dict[MetricSpec, dict[Labels, Value]]
    wall: float | None = None


class View:
    """One metric's history reduced to the labels ``keep`` (see the module doc)."""

    def __init__(self, spec: MetricSpec, keep: Keep, retention_s: float,
                 max_samples: int, track_values: bool) -> None:
        self.spec = spec
        self.keep = keep
        self.retention_s = retention_s
        self.histogram = spec.kind is Kind.HISTOGRAM
        self._kept = [name in keep for name in spec.labels]
        self._identity = all(self._kept)
        self._track = track_values
        #: A gauge may go down: it is never summed over a window, nor carried.
        self._carries = spec.kind is not Kind.GAUGE
        self.history: deque[tuple[float, dict[RowKey, Value]]] = deque(maxlen=max_samples)
        #: series labels -> its row key; the key object is shared by all its series.
        self._rows: dict[Labels, RowKey] = {}
        self._old_keys: dict[Labels, RowKey] = {}
        #: One key object per row, however many series share it.
        self._keys: dict[RowKey, RowKey] = {}
        self._youngest_birth = _OLD  # the oldest birth not yet aged into _OLD
        self._last: dict[Labels, Any] = {}
        self._offsets: dict[RowKey, Any] = {}

    def reduce(self, labels: Labels) -> Labels:
        if self._identity:
            return labels
        return tuple(value if kept else BLANK
                     for value, kept in zip(labels, self._kept, strict=True))

    # -- adding ------------------------------------------------------------------

    def add(self, t: float, labels: list[Labels], values: list[Any]) -> int:
        """Store one sample (``values``: floats, or a histogram's (counts..., sum));
        returns how many rows it stored."""
        self._age(t)
        rows = self._rows
        groups: dict[RowKey, list[Any]] = {}
        for series, value in zip(labels, values, strict=True):
            key = rows.get(series)
            if key is None:
                key = (t, self.reduce(series))
                key = rows[series] = self._keys.setdefault(key, key)
                if self._youngest_birth == _OLD:
                    self._youngest_birth = t
            group = groups.get(key)
            if group is None:
                groups[key] = [value]
            else:
                group.append(value)
        if self._carries and (self._track or len(rows) != len(labels)):
            self._carry(labels, values)
        offsets = self._offsets
        for key, offset in offsets.items():  # rows whose series all left keep counting
            groups.setdefault(key, [])
            groups[key].append(offset)
        summed = {key: self._sum(group) for key, group in groups.items()}
        self.history.append((t, self._shared(summed)))
        oldest = t - self.retention_s
        history = self.history
        while history and history[0][0] < oldest:
            history.popleft()
        return len(summed)

    def _sum(self, group: list[Any]) -> Value:
        if not self.histogram:
            return group[0] if len(group) == 1 else math.fsum(group)
        columns = group[0] if len(group) == 1 else tuple(map(sum, zip(*group, strict=True)))
        counts = columns[:-1]
        return HistogramValue(counts, columns[-1], sum(counts))

    def _shared(self, summed: dict[RowKey, Value]) -> dict[RowKey, Value]:
        """``summed`` with every row equal to the previous sample's replaced by that
        object; the previous sample's dict itself when nothing changed."""
        if not self.history:
            return summed
        previous = self.history[-1][1]
        unchanged = len(previous) == len(summed)
        for key, value in summed.items():
            before = previous.get(key)
            if before is not None and before == value:
                summed[key] = before
            else:
                unchanged = False
        return previous if unchanged else summed

    def _carry(self, labels: list[Labels], values: list[Any]) -> None:
        """Add to its row's offset the last value of a series that went down or left,
        so that no row ever goes down (see the module doc)."""
        last, rows, offsets = self._last, self._rows, self._offsets
        present = dict(zip(labels, values, strict=True))
        if self._track:
            total = _count if self.histogram else _same
            for series, value in present.items():
                before = last.get(series)
                if before is not None and total(value) < total(before):
                    self._offset(offsets, rows[series], before)
        if len(rows) != len(present):
            for series in [series for series in rows if series not in present]:
                before = last.get(series)
                if before is not None:
                    self._offset(offsets, rows[series], before)
                elif not self._track:  # lost: from now on, keep what the next one needs
                    self._track = True
                del rows[series]
        self._last = present if self._track else {}

    def _offset(self, offsets: dict[RowKey, Any], key: RowKey, value: Any) -> None:
        before = offsets.get(key)
        if before is None:
            offsets[key] = value
        elif self.histogram:
            offsets[key] = tuple(map(sum, zip(before, value, strict=True)))
        else:
            offsets[key] = before + value

    def _age(self, t: float) -> None:
        """Rows born before every window a read may ask for become one row (birth -inf)."""
        oldest = t - self.retention_s
        if self._youngest_birth == _OLD or self._youngest_birth >= oldest:
            return
        youngest = _OLD
        old_keys = self._old_keys
        for series, key in self._rows.items():
            birth = key[0]
            if birth == _OLD:
                continue
            if birth < oldest:
                old = old_keys.get(key[1])
                if old is None:
                    old = old_keys[key[1]] = (_OLD, key[1])
                self._rows[series] = old
                if key in self._offsets:
                    self._offset(self._offsets, old, self._offsets.pop(key))
            elif youngest == _OLD or birth < youngest:
                youngest = birth
        self._youngest_birth = youngest
        self._keys = {key: key for key in self._keys if key[0] >= oldest}

    # -- reading -----------------------------------------------------------------

    def points(self, start: float, end: float) -> list[tuple[Labels, list[tuple[float, Value]]]]:
        """Every row sampled in ``[start, end]``, as (labels, [(time, value), ...]); rows
        born at or before the window's first sample are merged (see the module doc)."""
        window = [(t, rows) for t, rows in self.history if start <= t <= end]
        if not window:
            return []
        first = window[0][0]
        found: dict[RowKey, list[tuple[float, Value]]] = {}
        for t, rows in window:
            merged: dict[RowKey, list[Value]] = {}
            for (birth, labels), value in rows.items():
                key = (_OLD if birth <= first else birth, labels)
                part = merged.get(key)
                if part is None:
                    merged[key] = [value]
                else:
                    part.append(value)
            for key, parts in merged.items():
                value = parts[0] if len(parts) == 1 else _add(parts)
                found.setdefault(key, []).append((t, value))
        return [(labels, points) for (_, labels), points in found.items()]

    def rows(self) -> int:
        return sum(len(rows) for _, rows in self.history)


def _same(value: float) -> float:
    return value


def _count(value: tuple) -> float:
    return sum(value[:-1])


def _add(values: list[Value]) -> Value:
    if isinstance(values[0], HistogramValue):
        counts = tuple(map(sum, zip(*(v.bucket_counts for v in values), strict=True)))
        return HistogramValue(counts, math.fsum(v.sum for v in values), sum(counts))
    return math.fsum(values)


def keep_all(spec: MetricSpec) -> Keep:
    return frozenset(spec.labels)


class SampleRing:
    """Past samples of the metrics alerts read over a window, and the latest of the
    metrics they read as they are now.

    ``views`` lists, per windowed metric, the label sets its readings keep (None:
    every label of every metric given, so any reading can be answered; the history
    then grows with the series, as Prometheus' does). Each metric's history is kept
    for its longest window (``retention_by_spec``, else ``retention_s``) and at most
    ``max_samples`` samples. ``current`` lists the metrics kept as they are now
    (:meth:`latest`; None: all). ``track_values``: whether a histogram's series may go
    down or disappear (the aggregator purges stale series); counters are always
    tracked. ``max_rows`` caps the rows stored over all views, ``on_drop`` hears how
    many samples a full history dropped.
    """

    def __init__(self, retention_s: float, max_samples: int,
                 windowed: Iterable[MetricSpec] | None = None,
                 retention_by_spec: dict[MetricSpec, float] | None = None, *,
                 views: dict[MetricSpec, set[Keep]] | None = None,
                 current: Iterable[MetricSpec] | None = None,
                 track_values: bool = True, max_rows: int | None = None,
                 on_drop: Callable[[int], None] | None = None) -> None:
        self.retention_s = retention_s
        self.max_samples = max_samples
        self.windowed = None if windowed is None else frozenset(windowed)
        self.retention_by_spec = dict(retention_by_spec or {})
        self.current = None if current is None else frozenset(current)
        self.max_rows = max_rows
        self.dropped = 0
        self._on_drop = on_drop
        self._track = track_values
        self._planned = views
        self._views: dict[MetricSpec, dict[Keep, View]] = {}
        for spec, keeps in (views or {}).items():
            for keep in keeps:
                self._view(spec, keep)
        self._times: deque[float] = deque(maxlen=max_samples)
        self._latest: Snapshot | None = None
        self._rows = 0

    def _view(self, spec: MetricSpec, keep: Keep) -> View:
        views = self._views.setdefault(spec, {})
        view = views.get(keep)
        if view is None:
            track = self._track or spec.kind is not Kind.HISTOGRAM
            view = views[keep] = View(spec, keep, self.retention_by_spec.get(
                spec, self.retention_s), self.max_samples, track)
        return view

    # -- adding ------------------------------------------------------------------

    def add(self, t: float, families: Iterable[Family], wall: float | None = None) -> None:
        """Add one collection (``Aggregator.collect``'s families)."""
        columns = []
        for family in families:
            labels = [sample.labels for sample in family.samples]
            if family.spec.kind is Kind.HISTOGRAM:
                values = [(*s.value.bucket_counts, s.value.sum) for s in family.samples]
            else:
                values = [sample.value for sample in family.samples]
            columns.append((family.spec, labels, values))
        self._add(t, columns, wall)

    def add_copies(self, t: float, copies: Iterable[Any], wall: float | None = None) -> None:
        """Add one collection as ``Aggregator.copy_series`` columns (no object per
        series is made for a metric that is only read over a window)."""
        self._add(t, [(copy.spec, copy.labels, copy.values) for copy in copies], wall)

    def _add(self, t: float, columns: list[tuple[MetricSpec, list, list]],
             wall: float | None) -> None:
        now: dict[MetricSpec, dict[Labels, Value]] = {}
        for spec, labels, values in columns:
            if self.current is None or spec in self.current:
                now[spec] = _as_values(spec, labels, values)
            if self.windowed is not None and spec not in self.windowed:
                continue
            views = self._views.get(spec)
            if not views and self._planned is None:
                views = {keep_all(spec): self._view(spec, keep_all(spec))}
            for view in (views or {}).values():
                self._rows -= view.rows()
                view.add(t, labels, values)
                self._rows += view.rows()
        self._latest = Snapshot(t, now, wall)
        self._times.append(t)
        while self._times and self._times[0] < t - self.retention_s:
            self._times.popleft()
        self._cap()

    def _cap(self) -> None:
        """Drop the oldest samples of the largest view while over ``max_rows``."""
        if self.max_rows is None or self._rows <= self.max_rows:
            return
        dropped = 0
        views = [view for by_keep in self._views.values() for view in by_keep.values()]
        while self._rows > self.max_rows:
            largest = max(views, key=View.rows)
            if len(largest.history) <= 2:  # a rate needs two samples: keep them
                break
            _, rows = largest.history.popleft()
            self._rows -= len(rows)
            dropped += 1
        if dropped:
            self.dropped += dropped
            if self._on_drop is not None:
                self._on_drop(dropped)

    # -- reading -----------------------------------------------------------------

    def __len__(self) -> int:
        """Samples within ``retention_s`` (at most ``max_samples``)."""
        return len(self._times)

    def latest(self) -> Snapshot | None:
        return self._latest

    def points(self, spec: MetricSpec, start: float, end: float,
               keep: Iterable[str] | None = None,
               ) -> list[tuple[Labels, list[tuple[float, Value]]]]:
        """The rows of ``spec`` that keep at least the labels ``keep`` (None: all),
        sampled in ``[start, end]``, as (labels, [(time, value), ...])."""
        wanted = keep_all(spec) if keep is None else frozenset(keep)
        views = self._views.get(spec, {})
        view = views.get(wanted) or next(
            (v for k, v in sorted(views.items(), key=lambda item: len(item[0]))
             if wanted <= k), None)
        return [] if view is None else view.points(start, end)

    def stats(self) -> dict[str, int]:
        """The history's size, for /health: rows stored, samples dropped."""
        return {"views": sum(len(views) for views in self._views.values()),
                "rows": self._rows, "max_rows": self.max_rows or 0,
                "dropped_samples": self.dropped}


def _as_values(spec: MetricSpec, labels: list[Labels], values: list[Any]) -> dict[Labels, Value]:
    if spec.kind is not Kind.HISTOGRAM:
        return dict(zip(labels, values, strict=True))
    return {series: HistogramValue(value[:-1], value[-1], sum(value[:-1]))
            for series, value in zip(labels, values, strict=True)}
