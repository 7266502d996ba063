"""The in-process evaluator computes what Prometheus computes.

Unit tests pin rate/quantile arithmetic and template functions; the cross-checks
feed the same synthetic series to the in-process evaluator and to promtool (real
Prometheus PromQL engine and template expander) and require identical results.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import yaml

from telemetry import catalogue as cat
from telemetry.alerting.definitions import AlertDefinition
from telemetry.alerting.promql import bucket_quantile, extrapolated_rate
from telemetry.alerting.query import SampleRing, current_read, evaluate, views_read
from telemetry.alerting.rules import expression, number, render_rules
from telemetry.alerting.templates import (
    humanize,
    humanize_duration,
    humanize_percentage,
    render_template,
)
from telemetry.model import Family, HistogramValue, Sample
from tests.support.monitoring_tools import assert_ok, run_tool

STEP = 10  # seconds between synthetic samples
JOB, INSTANCE = "yolo", "x:1"


# -- arithmetic ------------------------------------------------------------------


def test_rate_of_a_steady_counter_is_its_slope() -> None:
    points = [(float(t), t * 0.5) for t in range(0, 61, 15)]
    assert extrapolated_rate(points, 0.0, 60.0) == pytest.approx(0.5)
    assert extrapolated_rate(points, 0.0, 60.0, is_rate=False) == pytest.approx(30.0)


def test_a_counter_reset_adds_the_value_before_the_reset() -> None:
    points = [(0.0, 5.0), (15.0, 9.0), (30.0, 2.0), (45.0, 6.0), (60.0, 10.0)]
    # increase: (9 - 5) + 9 (reset) + (10 - 0) ... = 10 - 5 + 9 = 14
    assert extrapolated_rate(points, 0.0, 60.0, is_rate=False) == pytest.approx(14.0)


def test_a_rate_needs_two_samples() -> None:
    assert extrapolated_rate([(10.0, 3.0)], 0.0, 60.0) is None
    assert extrapolated_rate([], 0.0, 60.0) is None


def test_extrapolation_stops_at_the_counters_zero() -> None:
    # A series born mid-window at 1: extrapolating back 30s would go below zero.
    points = [(30.0, 1.0), (45.0, 4.0), (60.0, 7.0)]
    increase = extrapolated_rate(points, 0.0, 60.0, is_rate=False)
    assert increase == pytest.approx(6.0 * (30.0 + 5.0) / 30.0)


def test_bucket_quantile_interpolates_like_histogram_quantile() -> None:
    buckets = [(1.0, 10.0), (2.0, 20.0), (math.inf, 20.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(1.0)
    assert bucket_quantile(0.75, buckets) == pytest.approx(1.5)
    assert bucket_quantile(1.0, [(1.0, 1.0), (math.inf, 2.0)]) == 1.0  # rank in +Inf
    assert math.isnan(bucket_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]))
    assert math.isnan(bucket_quantile(0.5, [(1.0, 3.0)]))  # no +Inf bucket
    assert bucket_quantile(-1, buckets) == -math.inf


@pytest.mark.parametrize(("function", "value", "text"), [
    (humanize, 0.0, "0"), (humanize, 1234567.0, "1.235M"), (humanize, 0.00012, "120u"),
    (humanize, 0.2, "200m"), (humanize, 9500.0, "9.5k"), (humanize, -2500.0, "-2.5k"),
    (humanize_percentage, 0.3, "30%"), (humanize_percentage, 0.04567, "4.567%"),
    (humanize_duration, 65.0, "1m 5s"), (humanize_duration, 0.25, "250ms"),
    (humanize_duration, 3.5, "3.5s"), (humanize_duration, 90061.0, "1d 1h 1m 1s"),
    (humanize_duration, 0.0, "0s"), (humanize, math.nan, "NaN"),
])
def test_template_functions_match_prometheus(function, value: float, text: str) -> None:
    assert function(value) == text


def test_templates_expand_labels_and_value() -> None:
    text = "{{ $labels.agent }} at {{ $value | humanize }} ({{ $value | printf \"%.1f\" }})"
    assert render_template(text, {"agent": "dev"}, 9500.0) == "dev at 9.5k (9500.0)"


# -- cross-checks with promtool ----------------------------------------------------

PROBE_VALUES = (0.0, 0.000123, 0.25, 1.0, 3.5, 65.0, 3725.0, 90061.0, 1234567.0, -5.0,
                2e9, 0.1, 12.345678, 1e-5, 123456.0, -1.234e-5, 0.999999)
PROBE_TEMPLATE = ("{{ $labels.agent }}|{{ $value }}|{{ $value | humanize }}|"
                  "{{ $value | humanizePercentage }}|{{ $value | humanizeDuration }}|"
                  "{{ $value | printf \"%.2f\" }}")


def test_templates_render_as_prometheus_renders_them(tmp_path: Path) -> None:
    alert = AlertDefinition.model_validate({
        "name": "Probe", "metric": "yolo.context.tokens", "comparison": ">=",
        "threshold": -1e300, "by": ["agent"], "summary": PROBE_TEMPLATE,
        "description": "value {{ $value }}"})
    (tmp_path / "rules.yml").write_text(render_rules([alert]))
    series, expected = [], []
    for index, value in enumerate(PROBE_VALUES):
        agent = f"a{index}"
        series.append({"series": f'yolo_context_tokens{{job="{JOB}", instance="{INSTANCE}", '
                                 f'agent="{agent}"}}', "values": f"{number(value)}x3"})
        labels = {"agent": agent}
        expected.append({
            "exp_labels": {"severity": "warning", "job": JOB, "instance": INSTANCE, **labels},
            "exp_annotations": {"summary": render_template(PROBE_TEMPLATE, labels, value),
                                "description": render_template("value {{ $value }}",
                                                               labels, value)}})
    test_file = tmp_path / "templates_test.yml"
    test_file.write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": [
            {"eval_time": "1m", "alertname": "Probe", "exp_alerts": expected}]}]}))
    assert_ok(run_tool("promtool", "test", "rules", str(test_file)))


def _histories(rng: random.Random, steps: int) -> dict:
    """Synthetic aggregator values per metric, label set and step (None: not yet seen)."""

    def counter(start: int, *increments: int) -> list[float | None]:
        values, total = [], 0.0
        for step in range(steps):
            if step < start:
                values.append(None)
                continue
            total += increments[step % len(increments)]
            values.append(total)
        return values

    resetting = counter(0, 2, 3, 4)
    resetting = [v if i < 5 else (v or 0) - resetting[4] + 1 for i, v in enumerate(resetting)]
    histograms = {}
    for pair, median in ((("pm", "dev"), 0.3), (("dev", "qa"), 4.0), (("qa", "pm"), 20.0)):
        counts = [0] * (len(cat.HANDOFF_DURATION.buckets) + 1)
        history = []
        for _step in range(steps):
            for _ in range(rng.randint(0, 6)):
                observed = rng.lognormvariate(math.log(median), 0.8)
                index = sum(1 for bound in cat.HANDOFF_DURATION.buckets if bound < observed)
                counts[index] += 1
            history.append(HistogramValue(tuple(counts), 0.0, sum(counts)))
        histograms[pair] = history
    return {
        cat.ERRORS: {("pm", "ToolTimeout"): resetting,
                     ("dev", "ToolTimeout"): counter(4, 1, 5, 2),
                     ("dev", "RateLimited"): counter(0, 0, 1)},
        cat.DECISIONS: {("pm", "scope_cut"): counter(0, 3, 4),
                        ("dev", "implement"): counter(2, 6, 1, 2)},
        cat.CONTEXT_TOKENS: {("pm",): [float(rng.randint(100, 12000)) for _ in range(steps)],
                             ("dev",): [float(rng.randint(100, 12000)) for _ in range(steps)]},
        cat.WORKFLOWS: {("failed",): counter(1, 1, 0, 0, 2),
                        ("completed",): counter(0, 3, 2)},
        cat.HANDOFF_DURATION: histograms,
    }


CROSS_CHECKED = [
    {"name": "RateBy", "metric": "yolo.errors", "kind": "rate", "window": "60s",
     "match": {"error_type": "ToolTimeout"}, "by": ["agent"]},
    {"name": "RateAll", "metric": "yolo.errors", "kind": "rate", "window": "40s"},
    {"name": "ValueMax", "metric": "yolo.context.tokens", "by": ["agent"]},
    {"name": "ValueSum", "metric": "yolo.context.tokens", "aggregate": "sum"},
    {"name": "ValueAvg", "metric": "yolo.context.tokens", "aggregate": "avg"},
    {"name": "RatioSame", "metric": "yolo.workflows", "kind": "ratio", "window": "60s",
     "match": {"outcome": "failed"}},
    {"name": "RatioOther", "metric": "yolo.errors", "kind": "ratio", "window": "90s",
     "denominator": "yolo.decisions", "by": ["agent"]},
    {"name": "QuantileBy", "metric": "yolo.handoff.duration", "kind": "quantile",
     "quantile": 0.9, "window": "60s", "by": ["from_agent"]},
    {"name": "QuantileAll", "metric": "yolo.handoff.duration", "kind": "quantile",
     "quantile": 0.5, "window": "2m"},
    {"name": "HistogramRate", "metric": "yolo.handoff.duration", "kind": "rate",
     "window": "30s", "match": {"to_agent": "qa"}},
]


def _input_series(histories: dict) -> list[dict]:
    def text(values: list) -> str:
        return " ".join("_" if v is None else number(v) for v in values)

    series = []
    for spec, by_labels in histories.items():
        for labels, values in by_labels.items():
            pairs = [f'{k}="{v}"' for k, v in zip(spec.labels, labels, strict=True)]
            pairs = [f'job="{JOB}"', f'instance="{INSTANCE}"', *pairs]
            if spec.kind is not cat.Kind.HISTOGRAM:
                series.append({"series": f"{spec.prometheus_name}{{{', '.join(pairs)}}}",
                               "values": text(values)})
                continue
            bounds = (*spec.buckets, math.inf)
            for index, bound in enumerate(bounds):
                le = "+Inf" if math.isinf(bound) else repr(bound)
                cumulative = [sum(v.bucket_counts[: index + 1]) for v in values]
                series.append({"series": f'{spec.prometheus_name}_bucket{{'
                                         f'{", ".join(pairs)}, le="{le}"}}',
                               "values": text(cumulative)})
            series.append({"series": f"{spec.prometheus_name}_count{{{', '.join(pairs)}}}",
                           "values": text([v.count for v in values])})
    return series


def _ring(planned: bool) -> SampleRing:
    """Every series kept (as Prometheus does), or only what the checked expressions
    need, summed before storing (as the evaluator does)."""
    if not planned:
        return SampleRing(retention_s=3600, max_samples=1000)
    alerts = [AlertDefinition.model_validate({**fields, "threshold": 0, "summary": "x"})
              for fields in CROSS_CHECKED]
    return SampleRing(retention_s=3600, max_samples=1000, views=views_read(alerts),
                      current=current_read(alerts))


def _filled(planned: bool, histories: dict, steps: int) -> SampleRing:
    ring = _ring(planned)
    for step in range(steps):
        families = [Family(spec, tuple(Sample(labels, values[step], 0.0)
                                       for labels, values in by_labels.items()
                                       if values[step] is not None))
                    for spec, by_labels in histories.items()]
        ring.add(float(step * STEP), families)
    return ring


def test_summed_views_evaluate_as_every_series_does() -> None:
    """The evaluator's history (each expression's rows summed before storing) gives
    what keeping every series gives, which the next test checks against Prometheus;
    to the last bits only, as a sum of rates and a rate of sums round differently."""
    steps = 16
    histories = _histories(random.Random(7), steps)
    every, summed = _filled(False, histories, steps), _filled(True, histories, steps)
    for now in (float((steps - 1) * STEP), float((steps - 1) * STEP) - 3.0):
        for fields in CROSS_CHECKED:
            alert = AlertDefinition.model_validate({**fields, "threshold": 0, "summary": "x"})
            expected = evaluate(alert, every, now)
            assert expected, alert.name
            got = evaluate(alert, summed, now)
            assert got == pytest.approx(expected, rel=1e-12, nan_ok=True), alert.name


def test_expressions_evaluate_in_process_exactly_as_in_prometheus(tmp_path: Path) -> None:
    steps = 16
    histories = _histories(random.Random(7), steps)
    ring = _filled(False, histories, steps)
    now = float((steps - 1) * STEP)
    checks, compared = [], 0
    for fields in CROSS_CHECKED:
        alert = AlertDefinition.model_validate({**fields, "threshold": 0, "summary": "x"})
        samples = []
        for key, value in sorted(evaluate(alert, ring, now).items()):
            assert math.isfinite(value), (alert.name, key, value)
            labels = [f'job="{JOB}"', f'instance="{INSTANCE}"',
                      *(f'{k}="{v}"' for k, v in zip(alert.by, key, strict=True))]
            samples.append({"labels": "{" + ", ".join(labels) + "}", "value": value})
        assert samples, f"{alert.name}: nothing to compare"
        compared += len(samples)
        checks.append({"expr": expression(alert), "eval_time": f"{int(now)}s",
                       "exp_samples": samples})
    test_file = tmp_path / "expressions_test.yml"
    test_file.write_text(yaml.safe_dump({
        "rule_files": [], "evaluation_interval": f"{STEP}s",
        "tests": [{"interval": f"{STEP}s", "input_series": _input_series(histories),
                   "promql_expr_test": checks}]}, width=1000))
    assert compared >= len(CROSS_CHECKED)
    assert_ok(run_tool("promtool", "test", "rules", str(test_file)))
