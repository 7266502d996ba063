"""What an alert's expression evaluates to, computed from samples of the aggregator.

The evaluator keeps a bounded ring of past collections (:class:`SampleRing`), the
in-process equivalent of Prometheus' TSDB for the few metrics alerts read. Given
a definition, :func:`evaluate` returns one value per ``by`` label set, computed the
way the generated PromQL computes it (see :mod:`telemetry.alerting.rules`):

* value:    aggregate(latest value) by (by)
* age:      time() - aggregate(latest value > 0) by (by), time() being the sample's
            wall-clock time
* rate:     sum by (by) (rate(metric[window]))
* increase: sum by (by) (increase(metric[window]))
* ratio:    sum by (by) (rate(num[window])) / sum by (by) (rate(den[window]))
* quantile: histogram_quantile(q, sum by (le, by) (rate(metric_bucket[window])))

:func:`breaching` then applies the thresholds, the ``and`` and ``unless``
conditions and the ``or`` readings, as the generated rule's expression does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import accumulate, islice

from telemetry.alerting.definitions import AlertDefinition, Condition, Reading, on_labels
from telemetry.alerting.history import Keep, Labels, SampleRing, Snapshot, Value
from telemetry.alerting.promql import bucket_quantile, extrapolated_rate
from telemetry.catalogue import MetricSpec
from telemetry.model import HistogramValue

__all__ = [
    "Labels",
    "SampleRing",
    "Snapshot",
    "Value",
    "breaching",
    "current_read",
    "evaluate",
    "kept",
    "metrics_read",
    "read",
    "views_read",
    "windows_by_metric",
]


def _matches(spec: MetricSpec, labels: Labels, match: dict[str, str | list[str]]) -> bool:
    for key, want in match.items():
        value = labels[spec.labels.index(key)]
        if value != want if isinstance(want, str) else value not in want:
            return False
    return True


def _key(spec: MetricSpec, labels: Labels, by: Sequence[str]) -> Labels:
    return tuple(labels[spec.labels.index(name)] for name in by)


def _as_count(value: Value) -> float:
    return float(value.count) if isinstance(value, HistogramValue) else float(value)


def _as_sum(value: Value) -> float:
    return float(value.sum) if isinstance(value, HistogramValue) else float(value)


def _summed_rates(ring: SampleRing, spec: MetricSpec, match: dict[str, str | list[str]],
                  by: Sequence[str], now: float, window: float, *, is_rate: bool = True,
                  histogram_value: str = "count") -> dict[Labels, float]:
    totals: dict[Labels, float] = {}
    start = now - window
    read = _as_sum if histogram_value == "sum" else _as_count
    for labels, points in ring.points(spec, start, now, kept(by, match)):
        if match and not _matches(spec, labels, match):
            continue
        rate = extrapolated_rate([(t, read(v)) for t, v in points], start, now,
                                 is_rate=is_rate)
        if rate is not None:  # None: fewer than two points
            key = _key(spec, labels, by)
            totals[key] = totals.get(key, 0.0) + rate
    return totals


def _aggregate(how: str, values: list[float]) -> float:
    if how == "sum":
        return math.fsum(values)
    if how == "min":
        return min(values)
    if how == "avg":
        return math.fsum(values) / len(values)
    return max(values)


def _current(reading: Reading | Condition, by: Sequence[str],
             ring: SampleRing) -> dict[Labels, float]:
    """A value or an age, from the latest sample."""
    latest = ring.latest()
    if latest is None:
        return {}
    spec, age = reading.spec, reading.kind == "age"
    if age and latest.wall is None:
        raise ValueError("an age needs samples taken with their wall-clock time")
    grouped: dict[Labels, list[float]] = {}
    for labels, value in latest.series.get(spec, {}).items():
        number = _as_count(value)
        if age and not number > 0:
            continue  # 0: no timestamp (nothing in flight, never saved)
        if _matches(spec, labels, reading.match):
            grouped.setdefault(_key(spec, labels, by), []).append(number)
    how = reading.aggregate or ("min" if age else "max")
    values = {key: _aggregate(how, numbers) for key, numbers in grouped.items()}
    if age:
        wall = latest.wall or 0.0
        return {key: wall - value for key, value in values.items()}
    return values


def _divide(numerator: float, denominator: float) -> float:
    if denominator:
        return numerator / denominator
    if numerator == 0 or math.isnan(numerator):
        return math.nan
    return math.copysign(math.inf, numerator)


def _ratio(alert: Reading, by: Sequence[str], ring: SampleRing,
           now: float) -> dict[Labels, float]:
    read = alert.histogram_value
    numerators = _summed_rates(ring, alert.spec, alert.match, by, now, alert.window_s,
                               histogram_value=read)
    denominators = _summed_rates(ring, alert.denominator_spec, alert.denominator_match,
                                 by, now, alert.window_s, histogram_value=read)
    return {key: _divide(value, denominators[key])
            for key, value in numerators.items() if key in denominators}


def _quantile(alert: Reading, by: Sequence[str], ring: SampleRing,
              now: float) -> dict[Labels, float]:
    spec = alert.spec
    bounds = (*spec.buckets, math.inf)
    start = now - alert.window_s
    per_group: dict[Labels, list[float]] = {}
    for labels, points in ring.points(spec, start, now, kept(by, alert.match)):
        if alert.match and not _matches(spec, labels, alert.match):
            continue
        times = [t for t, v in points if isinstance(v, HistogramValue)]
        if len(times) < 2:
            continue  # no rate for any bucket
        cumulative = [tuple(accumulate(v.bucket_counts)) for _, v in points
                      if isinstance(v, HistogramValue)]
        # A bucket's rate depends only on its counts over time: buckets with the same
        # counts (often all those above the largest value) share one computation.
        by_counts: dict[tuple[int, ...], float | None] = {}
        rates = []
        for column in islice(zip(*cumulative, strict=False), len(bounds)):
            if column not in by_counts:
                by_counts[column] = extrapolated_rate(
                    list(zip(times, map(float, column), strict=True)), start, now)
            rates.append(by_counts[column])
        if len(rates) < len(bounds):
            raise IndexError("a histogram with fewer bucket counts than bounds")
        if any(rate is None for rate in rates):
            continue
        group = per_group.setdefault(_key(spec, labels, by), [0.0] * len(bounds))
        for index, rate in enumerate(rates):
            group[index] += rate or 0.0
    quantile = alert.quantile or 0.0
    return {key: bucket_quantile(quantile, list(zip(bounds, rates, strict=True)))
            for key, rates in per_group.items()}


def evaluate(alert: AlertDefinition, ring: SampleRing, now: float) -> dict[Labels, float]:
    """The expression's value per ``by`` label set (the threshold not yet applied)."""
    return read(alert, alert.by, ring, now)


def read(reading: Reading, by: Sequence[str], ring: SampleRing,
         now: float) -> dict[Labels, float]:
    """One reading's value per ``by`` label set, before its threshold and conditions."""
    kind = reading.kind
    if kind in ("value", "age"):
        return _current(reading, by, ring)
    if kind in ("rate", "increase"):
        return _summed_rates(ring, reading.spec, reading.match, by, now, reading.window_s,
                             is_rate=kind == "rate", histogram_value=reading.histogram_value)
    if kind == "ratio":
        return _ratio(reading, by, ring, now)
    return _quantile(reading, by, ring, now)


def breaching(alert: AlertDefinition, ring: SampleRing, now: float) -> dict[Labels, float]:
    """The label sets that breach the alert now, with their values: each reading's
    threshold, kept ``and`` its conditions, ``unless`` its exclusions; the first
    reading that breaches gives a label set its value (PromQL ``or``)."""
    found: dict[Labels, float] = {}
    for reading in alert.readings:
        values = {key: value for key, value in read(reading, alert.by, ring, now).items()
                  if reading.holds(value)}
        for condition in reading.and_:
            keys, positions = _condition_keys(condition, alert.by, ring)
            values = {key: value for key, value in values.items()
                      if tuple(key[i] for i in positions) in keys}
        for condition in reading.unless:
            keys, positions = _condition_keys(condition, alert.by, ring)
            values = {key: value for key, value in values.items()
                      if tuple(key[i] for i in positions) not in keys}
        for key, value in values.items():
            found.setdefault(key, value)
    return found


def _condition_keys(condition: Condition, by: Sequence[str],
                    ring: SampleRing) -> tuple[set[Labels], list[int]]:
    """The label sets (of the ``by`` labels the condition's metric has) that meet it,
    and where those labels sit in a ``by`` key."""
    on = on_labels(tuple(by), condition)
    keys = {key for key, value in _current(condition, on, ring).items()
            if condition.holds(value)}
    return keys, [list(by).index(label) for label in on]


def kept(by: Sequence[str], match: dict[str, str | list[str]]) -> Keep:
    """The labels a windowed reading needs kept: those it groups by or matches on."""
    return frozenset(by) | frozenset(match)


def views_read(alerts: Iterable[AlertDefinition]) -> dict[MetricSpec, set[Keep]]:
    """Per metric read over a window, the label sets its readings keep (the
    :class:`SampleRing`'s views)."""
    views: dict[MetricSpec, set[Keep]] = {}
    for alert in alerts:
        for reading in alert.readings:
            if reading.kind in ("value", "age"):
                continue
            views.setdefault(reading.spec, set()).add(kept(alert.by, reading.match))
            if reading.kind == "ratio":
                views.setdefault(reading.denominator_spec, set()).add(
                    kept(alert.by, reading.denominator_match))
    return views


def current_read(alerts: Iterable[AlertDefinition]) -> list[MetricSpec]:
    """The metrics the alerts read as they are now (values, ages, conditions)."""
    specs: dict[MetricSpec, None] = {}
    for alert in alerts:
        for reading in alert.readings:
            for condition in (*reading.and_, *reading.unless):
                specs[condition.spec] = None
            if reading.kind in ("value", "age"):
                specs[reading.spec] = None
    return list(specs)


def windows_by_metric(alerts: Iterable[AlertDefinition]) -> dict[MetricSpec, float]:
    """The longest window each windowed metric is read over."""
    longest: dict[MetricSpec, float] = {}
    for alert in alerts:
        for reading in alert.readings:
            if reading.kind in ("value", "age"):
                continue
            specs = [reading.spec]
            if reading.kind == "ratio":
                specs.append(reading.denominator_spec)
            for spec in specs:
                longest[spec] = max(longest.get(spec, 0.0), reading.window_s)
    return longest


def metrics_read(alerts: Iterable[AlertDefinition],
                 windowed: bool = False) -> list[MetricSpec]:
    """The catalogue entries the alerts need sampled (``windowed``: over a window, by
    a rate, increase, ratio or quantile), in a stable order."""
    specs: dict[MetricSpec, None] = {}
    for alert in alerts:
        for reading in alert.readings:
            if not windowed:
                for condition in (*reading.and_, *reading.unless):
                    specs[condition.spec] = None
            if windowed and reading.kind in ("value", "age"):
                continue
            specs[reading.spec] = None
            if reading.kind == "ratio":
                specs[reading.denominator_spec] = None
    return list(specs)
