"""The aggregator's families as prometheus_client metric families.

The path /metrics took before the exposition writer (:mod:`.exposition`): a
collector registered in a prometheus_client registry, encoded by prometheus_client.
It stays for comparison (the scrape benchmark, the equivalence tests) and for code
that wants prometheus_client's objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Exemplar

from telemetry.aggregation.aggregator import Aggregator
from telemetry.catalogue import Kind
from telemetry.model import Family, HistogramValue


class AggregatorCollector:
    """Builds one metric family per catalogue entry from a consistent collection."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.aggregator = aggregator

    def describe(self) -> list[Metric]:
        return []  # registering must not trigger a collection

    def collect(self) -> Iterator[Metric]:
        for family in self.aggregator.collect():
            yield to_metric_family(family)


def _bucket_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _with_exemplars(buckets: list, exemplars: tuple) -> list:
    """Each bucket with its exemplar, if it has one: a ``trace_id`` and ``span_id``
    (W3C hex) that OpenMetrics shows and Prometheus stores (text format 0.0.4 has no
    exemplars: it leaves them out)."""
    return [(le, count, Exemplar({"trace_id": f"{kept[2]:032x}", "span_id": f"{kept[3]:016x}"},
                                 kept[0], kept[1]))
            if kept is not None else (le, count)
            for (le, count), kept in zip(buckets, exemplars, strict=True)]


def to_metric_family(family: Family) -> Metric:
    spec = family.spec
    unit = spec.prometheus_unit
    name, labels = spec.prometheus_family, list(spec.labels)
    if spec.kind is Kind.HISTOGRAM:
        metric: Metric = HistogramMetricFamily(name, spec.help, labels=labels, unit=unit)
        bounds = (*spec.buckets, math.inf)
        for sample in family.samples:
            value = sample.value
            assert isinstance(value, HistogramValue)
            cumulative, buckets = 0, []
            for bound, in_bucket in zip(bounds, value.bucket_counts, strict=True):
                cumulative += in_bucket
                buckets.append((_bucket_label(bound), cumulative))
            if value.exemplars:
                buckets = _with_exemplars(buckets, value.exemplars)
            metric.add_metric(list(sample.labels), buckets, value.sum)
        return metric
    cls = CounterMetricFamily if spec.kind is Kind.COUNTER else GaugeMetricFamily
    metric = cls(name, spec.help, labels=labels, unit=unit)
    for sample in family.samples:
        metric.add_metric(list(sample.labels), sample.value)
    return metric
