"""Quantile alerts compute each bucket's rate from its own counts, also when buckets
share one computation because their counts are the same."""

from __future__ import annotations

import math
import random
from itertools import accumulate

import pytest

from telemetry import catalogue as cat
from telemetry.alerting.definitions import AlertDefinition
from telemetry.alerting.promql import bucket_quantile, extrapolated_rate
from telemetry.alerting.query import SampleRing, evaluate
from telemetry.model import Family, HistogramValue, Sample

SPEC = cat.HANDOFF_DURATION
BUCKETS = len(SPEC.buckets) + 1


def quantile_alert(**fields: object) -> AlertDefinition:
    return AlertDefinition.model_validate({
        "name": "Slow", "metric": SPEC.name, "kind": "quantile", "quantile": 0.9,
        "window": "5m", "threshold": 1, "summary": "x", **fields})


def histogram(counts: list[int]) -> HistogramValue:
    return HistogramValue(tuple(counts), float(sum(counts)), sum(counts))


def ring_of(history: dict[tuple[str, ...], list[list[int]]], times: list[float]) -> SampleRing:
    ring = SampleRing(600, 100)
    for step, t in enumerate(times):
        ring.add(t, [Family(SPEC, tuple(Sample(labels, histogram(counts[step]), 1.0)
                                        for labels, counts in history.items()))])
    return ring


def by_hand(history: dict[tuple[str, ...], list[list[int]]], times: list[float],
            now: float, window: float, q: float = 0.9) -> float:
    """Every bucket's rate on its own, summed over the series, then the quantile."""
    bounds = (*SPEC.buckets, math.inf)
    sums = [0.0] * BUCKETS
    for counts in history.values():
        cumulative = [list(accumulate(step)) for step in counts]
        for index in range(BUCKETS):
            rate = extrapolated_rate([(t, float(c[index])) for t, c in zip(times, cumulative,
                                                                           strict=True)],
                                     now - window, now)
            assert rate is not None
            sums[index] += rate
    return bucket_quantile(q, list(zip(bounds, sums, strict=True)))


def growing_history(rng: random.Random, steps: int) -> list[list[int]]:
    """Non-cumulative bucket counts at each step: most observations in a few low
    buckets, so the higher buckets' cumulative counts are the same."""
    counts, history = [0] * BUCKETS, []
    for _ in range(steps):
        for _ in range(rng.randint(0, 6)):
            counts[min(int(rng.expovariate(0.7)), BUCKETS - 1)] += 1
        history.append(list(counts))
    return history


@pytest.mark.parametrize("seed", range(8))
def test_buckets_with_the_same_counts_get_the_same_rate_each(seed: int) -> None:
    rng = random.Random(seed)
    times = [15.0 * step for step in range(6)]
    history = {("pm", "dev"): growing_history(rng, 6), ("dev", "qa"): growing_history(rng, 6),
               ("pm", "qa"): growing_history(rng, 6)}
    ring = ring_of(history, times)
    for q in (0.1, 0.3, 0.5, 0.7, 0.9):
        result = evaluate(quantile_alert(quantile=q), ring, times[-1])
        expected = by_hand(history, times, times[-1], 300.0, q)
        assert list(result) == [()]
        assert result[()] == expected or (math.isnan(result[()]) and math.isnan(expected))
    grouped = evaluate(quantile_alert(quantile=0.5, by=["from_agent"]), ring, times[-1])
    pm = {key: value for key, value in history.items() if key[0] == "pm"}
    assert grouped[("pm",)] == by_hand(pm, times, times[-1], 300.0, 0.5)


def test_a_series_seen_once_has_no_rate() -> None:
    ring = ring_of({("pm", "dev"): [[1] * BUCKETS]}, [10.0])
    assert evaluate(quantile_alert(), ring, 10.0) == {}
