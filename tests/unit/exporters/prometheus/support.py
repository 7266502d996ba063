"""Expositions parsed by prometheus_client's parsers, and what the aggregator says they
must hold, as ``{(sample name, sorted labels): value}``."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import blinker
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporters.prometheus import PrometheusExporter
from exporters.prometheus.exposition import go_float
from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.catalogue import Kind
from telemetry.model import HistogramValue

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
TEXT = "text/plain; version=0.0.4"

#: Label values that break a careless writer: quotes, backslashes, newlines, format
#: placeholders, braces, unicode (right-to-left override, astral), a lone surrogate.
HOSTILE = ['quo"te', "back\\slash", "new\nline", "\x00\x07bell", "é\u202e\U0001F600",
           "}{,=", '"}', "{0}", "%s %d", "x" * 300, " ", "a\tb", "fs-\udcff-name",
           'le="1"', "\\n", "日本語"]

#: Sampled anew at each collection: their keys are compared, not their values.
_VOLATILE = {cat.PROCESS_MEMORY.prometheus_name, cat.PROCESS_CPU.prometheus_name}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def exporter_for(aggregator: Aggregator) -> PrometheusExporter:
    return PrometheusExporter(PrometheusExporter.Config(), aggregator, None)


def send_hostile(names: Iterable[str] = HOSTILE) -> None:
    """One handoff, error and LLM call per hostile name (label values everywhere)."""
    for name in names:
        blinker.signal("yolo.handoff_completed").send(None, from_agent=name, to_agent=name,
                                                      duration_s=1.5)
        blinker.signal("yolo.error_occurred").send(None, agent=name, error_type=name)
        blinker.signal("yolo.llm_called").send(
            None, agent=name, model=name, duration_s=0.2, input_tokens=1_500_000,
            output_tokens=7, cost_usd=0.125)


def parse(body: bytes, openmetrics: bool) -> list:
    parser = parse_openmetrics if openmetrics else parse_text
    return list(parser(body.decode()))


def samples_of(families: list) -> Samples:
    found: Samples = {}
    for family in families:
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in found, f"sample written twice: {key}"
            found[key] = sample.value
    return found


def expected_samples(aggregator: Aggregator, openmetrics: bool) -> Samples:
    """Every sample the exposition must hold, from ``Aggregator.collect()``."""
    expected: Samples = {}
    for family in aggregator.collect():
        spec = family.spec
        name = spec.prometheus_family
        for sample in family.samples:
            labels = tuple(zip(spec.labels, sample.labels, strict=True))

            def put(suffix: str, value: float, extra: tuple = (), labels=labels,
                    name=name) -> None:
                expected[(name + suffix, tuple(sorted(labels + extra)))] = value

            if spec.kind is Kind.HISTOGRAM:
                value = sample.value
                assert isinstance(value, HistogramValue)
                cumulative = 0
                for bound, count in zip((*spec.buckets, math.inf), value.bucket_counts,
                                        strict=True):
                    cumulative += count
                    put("_bucket", cumulative, (("le", go_float(bound)),))
                put("_count", value.count)
                put("_sum", value.sum)
            else:
                put("_total" if spec.kind is Kind.COUNTER else "", sample.value)
            if openmetrics and spec.kind is not Kind.GAUGE:
                put("_created", sample.created)
    return expected


def assert_same_samples(found: Samples, expected: Samples) -> None:
    assert found.keys() == expected.keys()
    for key, value in expected.items():
        if key[0] in _VOLATILE:
            continue
        assert found[key] == value or (math.isnan(value) and math.isnan(found[key])), key


def set_exemplar(aggregator: Aggregator, labels: tuple[str, str], bucket: int,
                 kept: tuple[float, float, int, int]) -> None:
    """Give a handoff histogram series an exemplar, as an observation in a sampled
    span does (tests/unit/tracing/test_exemplars.py shows that part)."""
    aggregator.run_pending()  # the queued events recorded: the cell exists
    cell = aggregator.state.series[cat.HANDOFF_DURATION].cells[labels]
    if cell.exemplars is None:
        cell.exemplars = [None] * len(cell.counts)
    cell.exemplars[bucket] = kept


def now() -> float:
    return time.time()
