"""The data model exporters, alerting and tracing read: what a collection returns.

:meth:`telemetry.aggregation.aggregator.Aggregator.collect` returns one
:class:`Family` per metric of the catalogue, each with one :class:`Sample` per label
set; a histogram sample's value is a :class:`HistogramValue`.
:meth:`~telemetry.aggregation.aggregator.Aggregator.take_timer_samples` returns
:class:`TimerSample` s for exporters that send raw timers (StatsD). These are frozen
copies: readers never see the aggregator's live cells.
"""

from __future__ import annotations

from dataclasses import dataclass

from telemetry.catalogue import MetricSpec


@dataclass(frozen=True, slots=True)
class HistogramValue:
    bucket_counts: tuple[int, ...]  # non-cumulative; the last is the +Inf bucket
    sum: float
    count: int
    #: Per bucket, the latest observation made while a sampled span was current:
    #: ``(value, epoch seconds, trace id, span id)`` or None; None when none was kept.
    exemplars: tuple[tuple[float, float, int, int] | None, ...] | None = None
    #: The smallest and largest observation, when an exporter has them tracked
    #: (``Aggregator.histogram_features``); else None.
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    labels: tuple[str, ...]
    value: float | HistogramValue
    created: float  # epoch seconds the series was first seen: OTLP's start time


@dataclass(frozen=True, slots=True)
class Family:
    spec: MetricSpec
    samples: tuple[Sample, ...]


@dataclass(frozen=True, slots=True)
class TimerSample:
    spec: MetricSpec
    labels: tuple[str, ...]
    values: tuple[float, ...]
    count: int  # the true number of observations the values were drawn from
