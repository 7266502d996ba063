"""Cardinality limits, overflow counting, label sanitisation and the stale-series purge."""

from __future__ import annotations

import bisect
import math
import random
import tracemalloc

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.series import (
    EMPTY_VALUE,
    OVERFLOW_VALUE,
    HistogramCell,
    Series,
    bucket_index,
    sanitize_label_value,
)
from tests.conftest import FakeClock, send


def test_label_values_are_sanitised_and_capped() -> None:
    assert sanitize_label_value("dev\x00\x1b[31m\n", 128) == "dev[31m"
    assert sanitize_label_value("  \t ", 128) == EMPTY_VALUE
    capped = sanitize_label_value("a" * 500, 16)
    assert len(capped) == 16 and capped.endswith("…")
    assert sanitize_label_value("ünïcødé-agent", 128) == "ünïcødé-agent"


def test_series_cap_routes_new_label_sets_to_one_overflow_series() -> None:
    overflowed = []
    series = Series(cat.HANDOFFS, max_series=3, on_overflow=overflowed.append)
    for name in ("a", "b", "c", "d", "e", "d"):
        series.cell((name, "qa")).inc(1, 0.0)
    assert len(series) == 4  # the cap plus the overflow series
    assert series.cells[(OVERFLOW_VALUE, OVERFLOW_VALUE)].value == 3
    assert series.cells[("a", "qa")].value == 1
    assert len(overflowed) == 3  # every update routed to overflow is counted


def test_raw_values_that_sanitise_alike_share_one_series() -> None:
    series = Series(cat.ERRORS, max_series=10, max_label_length=8)
    series.cell(("dev\n", "X")).inc(1, 0.0)
    series.cell(("dev", "X")).inc(1, 0.0)
    assert series.cells == {("dev", "X"): series.cell(("dev", "X"))}
    assert series.cells[("dev", "X")].value == 2


def test_hundred_thousand_agent_names_keep_cap_plus_one_series_in_bounded_memory(
    clock: FakeClock,
) -> None:
    agg = Aggregator(max_series=1000, clock=clock)
    agg.connect()
    try:
        for i in range(2_000):  # warm up past the cap so the overflow path is allocated
            send("decision_made", agent=f"agent-{i}", decision_type="d", duration_s=0.1)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2_000, 100_000):
            send("decision_made", agent=f"agent-{i}", decision_type="d", duration_s=0.1)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert agg.series_count(cat.DECISIONS) == 1001
        assert agg.series_count(cat.DECISION_DURATION) == 1001
        assert agg.value(cat.SERIES_OVERFLOW, ("yolo.decisions",)) == 99_000
        assert agg.value(cat.DECISIONS, (OVERFLOW_VALUE, OVERFLOW_VALUE)) == 99_000
        assert agg.snapshot()[0].decisions_made == 100_000  # nothing is lost in totals
        assert grown < 256 * 1024, f"memory grew by {grown} bytes past the cap"
    finally:
        agg.disconnect()


def test_stale_series_are_purged_after_the_configured_time(clock: FakeClock) -> None:
    agg = Aggregator(stale_after_s=60, clock=clock)
    agg.connect()
    try:
        send("handoff_completed", from_agent="old", to_agent="qa", duration_s=1.0)
        clock.advance(30)
        send("handoff_completed", from_agent="new", to_agent="qa", duration_s=1.0)
        clock.advance(40)  # "old" is 70 s idle, "new" 40 s
        families = {f.spec: f for f in agg.collect()}
        handoffs = {s.labels: s.value for s in families[cat.HANDOFFS].samples}
        assert handoffs == {("new", "qa"): 1.0}
        assert agg.series_count(cat.HANDOFF_DURATION) == 1
        # A purged series that comes back starts again from zero (a counter reset).
        send("handoff_completed", from_agent="old", to_agent="qa", duration_s=1.0)
        assert agg.value(cat.HANDOFFS, ("old", "qa")) == 1
        # Unlabelled and self-metrics are never purged.
        clock.advance(1000)
        families = {f.spec: f for f in agg.collect()}
        assert families[cat.AGENTS_ACTIVE].samples
        events = {s.labels: s.value for s in families[cat.EVENTS].samples}
        assert events[("yolo.handoff_completed",)] == 3
    finally:
        agg.disconnect()


def test_purge_is_off_by_default(aggregator: Aggregator, clock: FakeClock) -> None:
    send("handoff_completed", from_agent="old", to_agent="qa", duration_s=1.0)
    clock.advance(10**6)
    families = {f.spec: f for f in aggregator.collect()}
    assert len(families[cat.HANDOFFS].samples) == 1


def test_label_sets_that_overflowed_get_their_own_series_once_a_purge_makes_room(
    clock: FakeClock,
) -> None:
    agg = Aggregator(max_series=1, stale_after_s=60, clock=clock)
    agg.connect()
    try:
        send("decision_made", agent="a", decision_type="x", duration_s=0.1)
        send("handoff_completed", from_agent="a", to_agent="x", duration_s=0.1)
        clock.advance(50)
        for _ in range(2):  # the second event must not reuse the overflow cells either
            send("decision_made", agent="b", decision_type="y", duration_s=0.1)
            send("handoff_completed", from_agent="b", to_agent="y", duration_s=0.1)
        assert agg.value(cat.DECISIONS, (OVERFLOW_VALUE, OVERFLOW_VALUE)) == 2
        assert agg.value(cat.HANDOFFS, (OVERFLOW_VALUE, OVERFLOW_VALUE)) == 2
        assert agg.value(cat.SERIES_OVERFLOW, ("yolo.decisions",)) == 2
        clock.advance(20)  # "a" is 70 s idle and purged; the overflow series is 20 s idle
        agg.collect()
        send("decision_made", agent="b", decision_type="y", duration_s=0.1)
        send("handoff_completed", from_agent="b", to_agent="y", duration_s=0.1)
        assert agg.value(cat.DECISIONS, ("b", "y")) == 1
        assert agg.value(cat.HANDOFFS, ("b", "y")) == 1
        families = {f.spec: f for f in agg.collect([cat.DECISION_DURATION])}
        counts = {s.labels: s.value.count for s in families[cat.DECISION_DURATION].samples}
        assert counts == {(OVERFLOW_VALUE,): 2, ("b",): 1}
    finally:
        agg.disconnect()


def test_timer_reservoir_is_a_uniform_sample_with_the_true_count() -> None:
    random.seed(14)
    kept_by_decile = [0] * 10
    trials, size, observations = 4000, 10, 200
    for _ in range(trials):
        cell = HistogramCell(cat.HANDOFF_DURATION.buckets, 0.0, reservoir_size=size)
        for value in range(observations):
            cell.observe(float(value), 0.0)
        values, count = cell.take_interval()
        assert count == observations and len(values) == size
        for value in values:
            kept_by_decile[int(value) * 10 // observations] += 1
        assert cell.take_interval() == ([], 0)  # a new interval starts empty
    expected = trials * size / 10
    # every part of the interval is kept as often (4 standard deviations ~ 6 %)
    assert all(abs(kept - expected) < 0.06 * expected for kept in kept_by_decile)


def test_timer_reservoir_keeps_every_value_until_full() -> None:
    cell = HistogramCell(cat.HANDOFF_DURATION.buckets, 0.0, reservoir_size=5)
    for value in (0.1, 0.2, 0.3):
        cell.observe(value, 0.0)
    assert cell.take_interval() == ([0.1, 0.2, 0.3], 3)
    assert cell.count == 3  # the buckets keep every observation


def test_extremes_are_unknown_for_what_was_observed_while_they_were_not_tracked() -> None:
    series = Series(cat.HANDOFF_DURATION)
    observed, fresh = series.cell(("a", "b")), series.cell(("c", "d"))
    observed.observe(0.5, 0.0)
    series.set_histogram_features(True, None)
    for value in (0.2, 3.0):
        observed.observe(value, 0.0)
        fresh.observe(value, 0.0)
    assert math.isnan(observed.min) and math.isnan(observed.max)
    assert (fresh.min, fresh.max) == (0.2, 3.0)
    # tracking stopped and started again: what was observed meanwhile is unknown too
    series.set_histogram_features(False, None)
    fresh.observe(9.0, 0.0)
    series.set_histogram_features(True, None)
    fresh.observe(1.0, 0.0)
    assert math.isnan(fresh.min) and math.isnan(fresh.max)
    new = series.cell(("e", "f"))
    new.observe(1.5, 0.0)
    assert (new.min, new.max) == (1.5, 1.5)


#: Every bucket layout of the catalogue, and a few that are not there.
BOUNDS = sorted({spec.buckets for spec in cat.CATALOGUE if spec.buckets}
                | {(), (1.0,), (0.0, 0.0, 1.0), (-math.inf, 0.0, math.inf), (1, 2.5, 10)})


def _edges(bounds: tuple[float, ...]) -> list[float]:
    """Each bound, the floats next to it, and values past both ends."""
    values = [-math.inf, math.inf, -0.0, 0.0, -1e300, 1e300]
    for bound in bounds:
        values += [bound, math.nextafter(bound, -math.inf), math.nextafter(bound, math.inf)]
    return values


def test_bucket_index_is_bisect_left_for_every_bucket_layout() -> None:
    """What a compiled build searches with, in either build; observe's bucket too."""
    rng = random.Random(5)
    for bounds in BOUNDS:
        finite = [b for b in bounds if math.isfinite(b)] or [1.0]
        values = _edges(bounds) + [rng.uniform(min(finite) - 1, max(finite) * 2)
                                   for _ in range(2000)]
        for value in values:
            expected = bisect.bisect_left(bounds, value)
            assert bucket_index(bounds, value) == expected, (bounds, value)
            cell = HistogramCell(bounds, 0.0)
            cell.observe(value, 0.0)
            assert cell.counts[expected] == 1, (bounds, value)
