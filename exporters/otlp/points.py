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

No OpenTelemetry import: the encoders and the SDK mapping
(:mod:`exporters.otlp.fastpath.metric_encoding`, :mod:`exporters.otlp.metrics`)
both read what this module gives them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from telemetry.catalogue import Kind, MetricSpec
from telemetry.model import Family, HistogramValue, Sample

_NS = 1_000_000_000
_INT64 = 2**63


@dataclass(frozen=True)
class IntervalSample(Sample):
    """A delta point: the change since ``start_ns``, the previous export's time."""

    start_ns: int = 0


def start_ns(sample: Sample) -> int:
    """A sum or histogram point's start time: the series' creation, or for a delta
    point the previous export's time, exactly as that export sent it."""
    start = getattr(sample, "start_ns", 0)
    return start or int(sample.created * _NS)


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


def recorded(spec: MetricSpec, sample: Sample) -> bool:
    """False for a counter or histogram cell made in advance and never recorded in; a
    gauge's value is always news, 0 included."""
    value = sample.value
    if isinstance(value, HistogramValue):
        return value.count > 0
    return spec.kind is Kind.GAUGE or value != 0


def _recorded_only(family: Family) -> Family:
    """``family`` without its samples never recorded in (itself when it has none)."""
    kind, samples = family.spec.kind, family.samples
    if kind is Kind.GAUGE:
        return family
    if kind is Kind.HISTOGRAM:
        kept = tuple(s for s in samples
                     if not isinstance(s.value, HistogramValue) or s.value.count)
    else:
        kept = tuple(s for s in samples if s.value)
    return family if len(kept) == len(samples) else Family(family.spec, kept)


#: Per series (metric, labels): its creation time, the value last sent, and when.
_Sent = dict[tuple[MetricSpec, tuple[str, ...]], tuple[float, float | HistogramValue, int]]


class ExportPoints:
    """Turns one collection into what one export sends; one per exporter.

    Not thread-safe: the exporter serializes its exports.
    """

    def __init__(self, delta: bool = False) -> None:
        self.delta = delta
        self._sent: _Sent = {}
        self._pending: _Sent | None = None

    def prepare(self, families: Iterable[Family], now_ns: int) -> list[Family]:
        """The families to encode at ``now_ns``; :meth:`commit` once they are sent."""
        if not self.delta:
            return [_recorded_only(family) for family in families]
        sent, pending, out = self._sent, {}, []
        for family in families:
            spec = family.spec
            if spec.kind is Kind.GAUGE:
                out.append(family)
                continue
            samples = []
            for sample in family.samples:
                key = (spec, sample.labels)
                last = sent.get(key)
                if last is not None and last[0] != sample.created:
                    last = None  # purged and made again: a new series
                point = _delta(spec, sample, last)
                if point is None:
                    if last is not None:
                        pending[key] = last
                    continue
                samples.append(point)
                pending[key] = (sample.created, sample.value, now_ns)
            out.append(Family(spec, tuple(samples)))
        self._pending = pending
        return out

    def commit(self) -> None:
        """The prepared export was accepted: the next deltas start from it."""
        if self._pending is not None:
            self._sent, self._pending = self._pending, None


def _since(exemplars: tuple | None, sent_ns: int) -> tuple | None:
    """The exemplars kept since the last export (older ones belong to an earlier delta)."""
    if not exemplars:
        return None
    after = sent_ns / 1e9
    kept = tuple(e if e is not None and e[1] >= after else None for e in exemplars)
    return kept if any(kept) else None


def _delta(spec: MetricSpec, sample: Sample,
           last: tuple[float, float | HistogramValue, int] | None) -> Sample | None:
    """The change since ``last`` (None: since the series was made); None if none."""
    if last is None:
        return sample if recorded(spec, sample) else None
    _, before, sent_ns = last
    value = sample.value
    if isinstance(value, HistogramValue) and isinstance(before, HistogramValue):
        count = value.count - before.count
        if count <= 0:
            return None
        change: float | HistogramValue = HistogramValue(
            tuple(now - then for now, then in zip(value.bucket_counts, before.bucket_counts,
                                                  strict=True)),
            value.sum - before.sum, count, _since(value.exemplars, sent_ns))
    else:
        change = value - before  # type: ignore[operator]
        if change <= 0:  # unchanged (a counter never goes down)
            return None
    return IntervalSample(sample.labels, change, sample.created, sent_ns)
