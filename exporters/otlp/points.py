"""What one OTLP metric export sends: the series that were recorded, as cumulative
totals or as the change since the last export, and which sums are integers.

The aggregator keeps cumulative cells, some of them made before anything was
recorded in them (a counter at 0, a histogram with no observation), so that
``/metrics`` shows every series from the start. OTLP has no use for those points: a
backend would store a series that never happened. :class:`ExportPoints` leaves them
out.

With ``temporality_preference: delta`` (``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``),
the specification's "delta" preference: counters and histograms are sent as the
change since the last export the collector accepted (start time: that export's
time; for a series new since then, its creation), gauges as they are. A series
with no change is not sent. ``lowmemory`` asks for delta for synchronous counters
and histograms, which every counter and histogram here is (each is updated by
events), so it means the same. The last sent values are kept per series, for the
series of the latest collection only, so they are bounded by the aggregator's series
limit. A failed export does not move them: the next delta covers both intervals and
nothing is lost.

Sums of counts (units like ``{handoff}``) are integers on the wire (``as_int``);
sums of seconds stay doubles. The choice is the metric's, so a metric's point type
never changes between exports.

An export reads the aggregator's columns (:meth:`Aggregator.copy_series`) and gives
columns on (:class:`ExportSeries`): no object per series, so an export of 10,000
series makes the garbage collector run no full collection (``benchmarks/``,
collection).

No OpenTelemetry import: the encoders and the SDK mapping
(:mod:`exporters.otlp.fastpath.metric_encoding`, :mod:`exporters.otlp.metrics`)
both read what this module gives them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import compress
from typing import TYPE_CHECKING, Any, NamedTuple

from telemetry.catalogue import Kind, MetricSpec

if TYPE_CHECKING:
    from telemetry.aggregation.collection import SeriesCopy

_NS = 1_000_000_000
_INT64 = 2**63


class ExportSeries(NamedTuple):
    """One metric's points of one export, as columns: ``labels[i]``, ``values[i]`` and
    ``starts[i]`` are one point's. A value is a number, or for a histogram a tuple of
    its bucket counts (non-cumulative, +Inf last) then its sum, as in
    :class:`~telemetry.aggregation.collection.SeriesCopy`. A start is in nanoseconds:
    the series' creation, or for a delta point the previous export's time. A
    histogram's ``extremes[i]`` is its (min, max) or None, ``exemplars[i]`` its
    per-bucket exemplars or None; both columns are None for counters and gauges."""

    spec: MetricSpec
    labels: list[tuple[str, ...]]
    values: list[Any]
    starts: list[int]
    extremes: list[tuple[float, float] | None] | None = None
    exemplars: list[tuple | None] | None = None


def is_integer(spec: MetricSpec) -> bool:
    """Counters of things (``{handoff}``, ``{event}``) are sent as ints; counters of
    seconds as doubles."""
    return spec.kind is Kind.COUNTER and spec.unit.startswith("{")


def number(spec: MetricSpec, value: float) -> int | float:
    """A number point's value as sent: an int for a counter of things (whole, as the
    aggregator's counts are, and within int64), a double otherwise."""
    if is_integer(spec) and math.isfinite(value) and value == int(value) \
            and -_INT64 <= value < _INT64:
        return int(value)
    return float(value)


def recorded(spec: MetricSpec, value: Any) -> bool:
    """False for a counter or histogram cell made in advance and never recorded in
    (``value`` as in :class:`ExportSeries`); a gauge's value is always news, 0 included."""
    if spec.kind is Kind.HISTOGRAM:
        return any(value[:-1])
    return spec.kind is Kind.GAUGE or value != 0


def _recorded_only(copy: SeriesCopy) -> ExportSeries:
    """``copy``'s points without those never recorded in, starting at their creation."""
    spec = copy.spec
    starts = [int(created * _NS) for created in copy.created]
    columns = (copy.labels, copy.values, starts, copy.extremes, copy.exemplars)
    if spec.kind is Kind.GAUGE:
        return ExportSeries(spec, *columns)
    keep = [recorded(spec, value) for value in copy.values]
    if all(keep):
        return ExportSeries(spec, *columns)
    return ExportSeries(spec, *(None if column is None else list(compress(column, keep))
                                for column in columns))


#: Per metric, per label values: the series' creation time, the value last sent, and when.
_Sent = dict[MetricSpec, dict[tuple[str, ...], tuple[float, Any, int]]]


class ExportPoints:
    """Turns one collection into what one export sends; one per exporter.

    Not thread-safe: the exporter serializes its exports.
    """

    def __init__(self, delta: bool = False) -> None:
        self.delta = delta
        self._sent: _Sent = {}
        self._pending: _Sent | None = None

    def prepare(self, copies: Iterable[SeriesCopy], now_ns: int) -> list[ExportSeries]:
        """The points to encode at ``now_ns``; :meth:`commit` once they are sent."""
        if not self.delta:
            return [_recorded_only(copy) for copy in copies]
        pending: _Sent = {}
        out = []
        for copy in copies:
            if copy.spec.kind is Kind.GAUGE:
                out.append(_recorded_only(copy))
                continue
            last_sent = self._sent.get(copy.spec, {})
            now_sent = pending[copy.spec] = {}
            out.append(_changes(copy, last_sent, now_sent, now_ns))
        self._pending = pending
        return out

    def commit(self) -> None:
        """The prepared export was accepted: the next deltas start from it."""
        if self._pending is not None:
            self._sent, self._pending = self._pending, None


def _changes(copy: SeriesCopy, last_sent: dict[tuple[str, ...], tuple[float, Any, int]],
             now_sent: dict[tuple[str, ...], tuple[float, Any, int]],
             now_ns: int) -> ExportSeries:
    """The delta points of one counter or histogram since ``last_sent``; what is sent
    (or still owed, for series without a change) is recorded in ``now_sent``."""
    spec = copy.spec
    histogram = spec.kind is Kind.HISTOGRAM
    out = ExportSeries(spec, [], [], [], [] if histogram else None, [] if histogram else None)
    for index, (labels, value, created) in enumerate(zip(copy.labels, copy.values,
                                                         copy.created, strict=True)):
        last = last_sent.get(labels)
        if last is not None and last[0] != created:
            last = None  # purged and made again: a new series
        if last is None:  # new since the last export: all of it, from its creation
            if not recorded(spec, value):
                continue
            change, start = value, int(created * _NS)
            extremes = copy.extremes[index] if histogram else None  # type: ignore[index]
            exemplars = copy.exemplars[index] if histogram else None  # type: ignore[index]
        else:
            _, before, start = last
            change = _delta(histogram, value, before)
            if change is None:
                now_sent[labels] = last
                continue
            extremes = None  # a series' min and max are not those of an interval
            exemplars = (_since(copy.exemplars[index], start)  # type: ignore[index]
                         if histogram else None)
        now_sent[labels] = (created, value, now_ns)
        out.labels.append(labels)
        out.values.append(change)
        out.starts.append(start)
        if histogram:
            out.extremes.append(extremes)  # type: ignore[union-attr]
            out.exemplars.append(exemplars)  # type: ignore[union-attr]
    return out


def _delta(histogram: bool, value: Any, before: Any) -> Any:
    """The change from ``before`` to ``value``; None when there is none."""
    if histogram:
        counts = tuple(now - then for now, then in zip(value[:-1], before[:-1], strict=True))
        if sum(counts) <= 0:
            return None
        return (*counts, value[-1] - before[-1])
    change = value - before
    return change if change > 0 else None  # unchanged (a counter never goes down)


def _since(exemplars: tuple | None, sent_ns: int) -> tuple | None:
    """The exemplars kept since the last export (older ones belong to an earlier delta)."""
    if not exemplars:
        return None
    after = sent_ns / 1e9
    kept = tuple(e if e is not None and e[1] >= after else None for e in exemplars)
    return kept if any(kept) else None
