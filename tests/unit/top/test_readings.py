"""Readings, rates and the bounded history the frames are built from."""

from __future__ import annotations

import itertools

import pytest

from telemetry.top.readings import History, Reading, increase, increase_by, quantile
from telemetry.top.scrape import base_url, parse_health, parse_metrics


def _reading(at: float, **series: dict[tuple[tuple[str, str], ...], float]) -> Reading:
    return Reading("i", at, dict(series))


A = (("agent", "a"),)
B = (("agent", "b"),)


def test_an_increase_sums_series_and_counts_a_reset_from_zero() -> None:
    old = _reading(0, yolo_decisions_total={A: 10.0, B: 5.0})
    new = _reading(10, yolo_decisions_total={A: 14.0, B: 2.0})  # b restarted
    assert increase_by(old, new, "yolo_decisions_total", ("agent",)) == {("a",): 4.0,
                                                                          ("b",): 2.0}
    assert increase(old, new, "yolo_decisions_total") == 6.0


def test_an_increase_keeps_only_matching_series() -> None:
    name = "yolo_llm_token_usage_sum"
    series = {(("token_type", kind),): value
              for kind, value in (("input", 10.0), ("output", 5.0), ("cached_input", 7.0))}
    old, new = _reading(0, **{name: {k: 0.0 for k in series}}), _reading(1, **{name: series})
    assert increase(old, new, name, {"token_type": "input|output"}) == 15.0


def test_a_new_series_counts_from_zero() -> None:
    old = _reading(0, yolo_errors_total={})
    new = _reading(5, yolo_errors_total={A: 3.0})
    assert increase(old, new, "yolo_errors_total") == 3.0


def test_quantile_interpolates_as_promql_does() -> None:
    buckets = [(0.1, 0.0), (1.0, 50.0), (10.0, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(1.0)
    assert quantile(0.95, buckets) == pytest.approx(9.1)
    assert quantile(0.95, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.99, [(1.0, 0.0), (float("inf"), 4.0)]) == 1.0  # the last finite bound


def test_history_keeps_recent_readings_and_thins_older_ones() -> None:
    history = History(span_s=300, recent_s=70, coarse_step_s=5)
    for second in range(0, 400):
        history.add(_reading(second, yolo_decisions_total={A: float(second)}))
    kept = [r.taken_at for r in history.readings("i")]
    assert kept[0] >= 399 - 300
    recent = [t for t in kept if t >= 399 - 70]
    assert recent == list(range(329, 400))  # every one of the last 70 s
    older = [t for t in kept if t < 399 - 70]
    assert all(b - a >= 5 for a, b in itertools.pairwise(older))
    assert len(kept) < 70 + 300 / 5 + 2


def test_history_finds_the_reading_a_window_back_or_the_oldest() -> None:
    history = History()
    for second in (10.0, 11.0, 12.0):
        history.add(_reading(second, yolo_decisions_total={A: second}))
    assert history.at_or_before("i", 11.5).taken_at == 11.0
    assert history.at_or_before("i", 0.0).taken_at == 10.0
    assert history.at_or_before("other", 11.0) is None


def test_a_failed_reading_is_remembered_and_cleared_by_a_good_one() -> None:
    history = History()
    history.add(Reading("i", 1.0, error="connection refused"))
    assert history.last_error["i"].error == "connection refused"
    assert history.latest("i") is None and history.instances() == ["i"]
    history.add(_reading(2.0, yolo_decisions_total={A: 1.0}))
    assert "i" not in history.last_error and history.latest("i").taken_at == 2.0


def test_the_parser_keeps_only_the_samples_a_frame_reads() -> None:
    text = ("# TYPE yolo_decisions_total counter\n"
            'yolo_decisions_total{agent="a",decision_type="x"} 3.0\n'
            "# TYPE something_else gauge\nsomething_else 1\n")
    assert parse_metrics(text) == {
        "yolo_decisions_total": {(("agent", "a"), ("decision_type", "x")): 3.0}}
    with pytest.raises(ValueError):
        parse_metrics('yolo_decisions_total{agent="a" 3.0\n')
    with pytest.raises(ValueError):
        parse_health(b"[1, 2]")


@pytest.mark.parametrize(("given", "expected"), [
    ("127.0.0.1:9464", "http://127.0.0.1:9464"),
    ("http://h:1/", "http://h:1"),
    ("https://h:1/metrics", "https://h:1"),
    ("http://h:1/prefix/health", "http://h:1/prefix"),
])
def test_a_url_may_name_the_server_or_one_of_its_routes(given: str, expected: str) -> None:
    assert base_url(given) == expected


def test_a_placeholder_for_a_whole_source_is_forgotten_once_instances_answer() -> None:
    history = History()
    history.add(Reading("http://prometheus:9090", 1.0, error="refused", placeholder=True))
    history.add(Reading("kept:1", 1.0, error="refused"))
    assert history.instances() == ["http://prometheus:9090", "kept:1"]
    history.add(_reading(2.0, yolo_decisions_total={A: 1.0}))
    assert history.instances() == ["kept:1", "i"]
    assert "http://prometheus:9090" not in history.last_error
