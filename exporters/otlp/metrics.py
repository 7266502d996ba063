"""Translate the aggregator's series into OTLP metric data.

The aggregator already holds cumulative totals, so the OTLP exporter does not go
through an OpenTelemetry ``MeterProvider`` (which would need an instrument call per
event). Instead, on each export interval, :func:`to_metrics_data` builds the SDK's
export data classes directly from one :meth:`Aggregator.copy_series` (the points of
:mod:`exporters.otlp.points`) and hands them to the OTLP metric exporter, which only
encodes and sends them.

Mapping (one catalogue entry -> one OTLP metric):

* name ``spec.otlp_name``, unit ``spec.unit`` (UCUM), description ``spec.help``;
  attributes named ``spec.otlp_attributes`` plus ``spec.otlp_constant_attributes``
  (the label names, except where the catalogue declares a semantic convention: the
  GenAI client metrics);
* counter -> monotonic ``Sum``; gauge -> ``Gauge``; histogram -> explicit-bucket
  ``Histogram`` with the catalogue's bounds; cumulative, or delta when preferred
  (what the points hold is :mod:`exporters.otlp.points`' choice);
* a cumulative point's start time is the series' creation time (``SeriesCopy.created``),
  which stays the same for the life of the series; a series purged as stale and seen
  again gets a new start time, which is a reset (gauges have no start time on the
  wire); a delta point starts at the previous export;
* sums of counts are ints, other values doubles (:func:`~exporters.otlp.points.number`),
  so a metric's point type never changes between exports. A histogram point carries
  its min and max when the aggregator tracks them (cumulative exports).

The exporters themselves send the same request encoded without these objects
(:mod:`exporters.otlp.fastpath.metric_encoding`, :class:`SeriesExport`); this translation is
their fallback, and the reference the encoding is tested against.

This module imports the OpenTelemetry SDK: import it only when OTLP is enabled.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporters.otlp.points import ExportSeries, number
from telemetry.catalogue import Kind, MetricSpec

_CUMULATIVE = AggregationTemporality.CUMULATIVE
_DELTA = AggregationTemporality.DELTA


#: The semantic conventions the resource, metric and span attributes follow
#: (``schema_url`` of the resource and of the scope); 1.37 has ``gen_ai.provider.name``.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"


def build_resource(service_name: str, instance_id: str, version: str) -> Resource:
    """The resource every metric and span carries.

    ``Resource.create`` reads ``OTEL_RESOURCE_ATTRIBUTES`` and adds the SDK's own
    ``telemetry.sdk.*`` attributes. ``service.name`` is the config's ``service_name``,
    which already ranks ``OTEL_SERVICE_NAME``, then ``OTEL_RESOURCE_ATTRIBUTES``'
    ``service.name``, then the file (:mod:`telemetry.configsource`).
    ``service.instance.id`` and ``service.version`` are defaults: the environment's
    values, when it gives them, win.
    """
    attributes: dict[str, Any] = {"service.instance.id": instance_id, "service.version": version}
    explicit = OTELResourceDetector().detect().attributes  # the SDK's reading of the variable
    attributes.update({key: explicit[key] for key in attributes if key in explicit})
    attributes["service.name"] = service_name
    return Resource.create(attributes, SCHEMA_URL)


def _attributes(spec: MetricSpec, labels: tuple[str, ...]) -> Mapping[str, str]:
    # A semantic convention's attribute names where the catalogue declares one.
    attributes = dict(zip(spec.otlp_attributes, labels, strict=False))
    attributes.update(spec.otlp_constant_attributes)
    return attributes


def _number_points(series: ExportSeries, now_ns: int) -> list[NumberDataPoint]:
    spec = series.spec
    return [NumberDataPoint(_attributes(spec, labels), start, now_ns,
                            number(spec, value))  # type: ignore[arg-type]
            for labels, value, start in zip(series.labels, series.values, series.starts,
                                            strict=True)]


def _histogram_points(series: ExportSeries, now_ns: int) -> list[HistogramDataPoint]:
    spec = series.spec
    bounds = list(spec.buckets)
    points = []
    for index, (labels, value, start) in enumerate(zip(series.labels, series.values,
                                                       series.starts, strict=True)):
        counts = value[:-1]
        extremes = series.extremes[index] if series.extremes else None
        exemplars = series.exemplars[index] if series.exemplars else None
        points.append(HistogramDataPoint(
            attributes=_attributes(spec, labels),
            start_time_unix_nano=start,
            time_unix_nano=now_ns,
            count=sum(counts),
            sum=float(value[-1]),
            bucket_counts=list(counts),
            explicit_bounds=bounds,
            min=extremes[0] if extremes else None,  # when tracked: optional in OTLP
            max=extremes[1] if extremes else None,
            exemplars=_exemplars(exemplars),
        ))
    return points


def _exemplars(kept: tuple | None) -> list:
    """The SDK's exemplars for a point's per-bucket exemplars (bucket order)."""
    if not kept:
        return []
    from opentelemetry.sdk.metrics import Exemplar

    return [Exemplar({}, float(value), int(at * 1e9), span_id, trace_id)
            for value, at, trace_id, span_id in filter(None, kept)]


def to_metric(series: ExportSeries, now_ns: int, delta: bool = False) -> Metric | None:
    """One OTLP metric for a metric's points, or None when it has none."""
    spec = series.spec
    if not series.labels:
        return None
    temporality = _DELTA if delta else _CUMULATIVE
    if spec.kind is Kind.COUNTER:
        data = Sum(_number_points(series, now_ns), temporality, is_monotonic=True)
    elif spec.kind is Kind.GAUGE:
        data = Gauge(_number_points(series, now_ns))
    else:
        data = Histogram(_histogram_points(series, now_ns), temporality)
    return Metric(name=spec.otlp_name, description=spec.help, unit=spec.unit, data=data)


def to_metrics_data(series: Iterable[ExportSeries], resource: Resource,
                    scope: InstrumentationScope, now_ns: int | None = None,
                    delta: bool = False) -> MetricsData:
    """The whole export request for one collection (``delta``: the points hold
    changes, :mod:`exporters.otlp.points`)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    metrics = [metric for one in series
               if (metric := to_metric(one, now_ns, delta)) is not None]
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(scope, metrics, "")], "")])


@dataclass(frozen=True)
class EncodedMetrics:
    """One encoded export request and its number of data points."""

    payload: bytes
    points: int


class SeriesExport:
    """What the metric exporters of :mod:`exporters.otlp.fastpath.metric_http` and
    :mod:`exporters.otlp.fastpath.metric_grpc` share: the encoder, and the SDK data for when
    the fast path cannot be taken."""

    def setup_encoding(self, resource: Resource, scope: InstrumentationScope,
                       delta: bool = False) -> None:
        from exporters.otlp.fastpath.metric_encoding import MetricsEncoder, sdk_header

        self.resource, self.scope, self.delta = resource, scope, delta
        self.encoder = MetricsEncoder(*sdk_header(resource, scope), delta=delta)

    def sdk_data(self, series: Iterable[ExportSeries], now_ns: int) -> MetricsData:
        return to_metrics_data(series, self.resource, self.scope, now_ns, self.delta)

    def encode(self, series: Iterable[ExportSeries], now_ns: int) -> EncodedMetrics:
        return EncodedMetrics(*self.encoder.encode(series, now_ns))
