"""The alert history keeps only what the expressions need: rows summed over the labels
they sum away, shared when unchanged, never going down when a series resets or
leaves, and capped with a counted drop that /health shows."""

from __future__ import annotations

import pytest

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.alerting.definitions import AlertDefinition
from telemetry.alerting.evaluator import AlertEvaluator
from telemetry.alerting.query import SampleRing, evaluate, views_read
from telemetry.model import Family, HistogramValue, Sample
from tests.conftest import FakeClock, send

RATE_ALL = AlertDefinition.model_validate({
    "name": "Handoffs", "metric": cat.HANDOFFS.name, "kind": "rate", "window": "60s",
    "threshold": 0, "summary": "x"})
P95 = AlertDefinition.model_validate({
    "name": "Slow", "metric": cat.HANDOFF_DURATION.name, "kind": "quantile",
    "quantile": 0.95, "window": "60s", "threshold": 1, "summary": "x"})


def counters(values: dict[tuple[str, str], float]) -> list[Family]:
    return [Family(cat.HANDOFFS, tuple(Sample(labels, value, 0.0)
                                       for labels, value in values.items()))]


def planned(*alerts: AlertDefinition) -> SampleRing:
    return SampleRing(600, 100, views=views_read(alerts), current=[])


def test_a_summed_view_stores_one_row_however_many_series() -> None:
    ring = planned(P95)
    bounds = len(cat.HANDOFF_DURATION.buckets) + 1
    for step in range(3):
        ring.add(15.0 * step, [Family(cat.HANDOFF_DURATION, tuple(
            Sample((f"agent-{i}", "dev"), HistogramValue((step,) * bounds, 0.3 * step,
                                                         step * bounds), 0.0)
            for i in range(500)))])
    assert ring.stats()["rows"] == 3  # one row per sample, not 500
    ((labels, points),) = ring.points(cat.HANDOFF_DURATION, 0, 30, ())
    assert labels == ("", "")
    assert [value.count for _, value in points] == [0, 500 * bounds, 1000 * bounds]


def test_unchanged_samples_are_shared_not_copied() -> None:
    ring = planned(RATE_ALL)
    ring.add(0.0, counters({("pm", "dev"): 1.0, ("dev", "qa"): 2.0}))
    ring.add(15.0, counters({("pm", "dev"): 1.0, ("dev", "qa"): 2.0}))
    ring.add(30.0, counters({("pm", "dev"): 2.0, ("dev", "qa"): 2.0}))
    (view,) = ring._views[cat.HANDOFFS].values()
    samples = [rows for _, rows in view.history]
    assert samples[1] is samples[0]
    assert samples[2] is not samples[1]


def test_a_series_that_resets_or_leaves_never_makes_its_row_go_down() -> None:
    steps = [{("pm", "dev"): 5.0, ("dev", "qa"): 3.0},
             {("pm", "dev"): 6.0},  # dev -> qa left (purged)
             {("pm", "dev"): 1.0},  # pm -> dev went down: re-created
             {("pm", "dev"): 4.0, ("dev", "qa"): 1.0}]  # dev -> qa is back, new
    ring, every = planned(RATE_ALL), SampleRing(600, 100)
    for step, values in enumerate(steps):
        ring.add(15.0 * step, counters(values))
        every.add(15.0 * step, counters(values))
    rows = [sum(value for _, points in ring.points(cat.HANDOFFS, t, t, ()) for _, value in points)
            for t in (0.0, 15.0, 30.0, 45.0)]
    assert rows == [8.0, 9.0, 10.0, 14.0]  # 6 + 3 carried; 1 + 6 + 3; 4 + 1 + 6 + 3
    # The increase each row shows is the one Prometheus' reset handling gives.
    assert evaluate(RATE_ALL, ring, 45.0)[()] == pytest.approx(
        evaluate(RATE_ALL, every, 45.0)[()], rel=1e-12)


def test_a_series_born_inside_the_window_is_extrapolated_from_its_own_start() -> None:
    ring, every = planned(RATE_ALL), SampleRing(600, 100)
    for step in range(8):
        values = {("pm", "dev"): 100.0 + 7 * step}
        if step >= 4:
            values[("dev", "qa")] = 3.0 * (step - 3)
        ring.add(15.0 * step, counters(values))
        every.add(15.0 * step, counters(values))
    for now in (105.0, 112.5):  # the window starting on a sample, and between two
        assert evaluate(RATE_ALL, ring, now)[()] == pytest.approx(
            evaluate(RATE_ALL, every, now)[()], rel=1e-12)


def test_a_full_history_drops_its_oldest_samples_counted_and_shown(clock: FakeClock) -> None:
    aggregator = Aggregator(clock=clock)
    aggregator.connect()
    try:
        by_pair = AlertDefinition.model_validate({
            **RATE_ALL.model_dump(by_alias=True), "by": ["from_agent", "to_agent"]})
        evaluator = AlertEvaluator([by_pair], aggregator, interval_s=15, clock=clock,
                                   max_rows=40)
        for step in range(10):
            for pair in range(10):
                send("handoff_completed", from_agent=f"a{pair}", to_agent="b",
                     duration_s=0.1 * step)
            evaluator.evaluate()
            clock.advance(15)
        history = evaluator.health()["history"]
        assert history["rows"] <= 40
        assert history["dropped_samples"] == 6  # 10 samples of 10 rows: 4 fit
        assert aggregator.value(cat.DROPPED, ("alerting", "history_full")) == 6
        assert evaluator.evaluation_errors == 0
    finally:
        aggregator.disconnect()
