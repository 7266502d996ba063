"""Ages, increases, any-of matchers, histogram sums, and/unless conditions, or readings.

The generated PromQL is pinned, and the cross-check feeds the same synthetic series
to the in-process :func:`breaching` and to promtool (Prometheus' own engine, whose
``time()`` is the evaluation time) and requires the same label sets and values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from telemetry import catalogue as cat
from telemetry.alerting.definitions import AlertDefinition
from telemetry.alerting.query import SampleRing, breaching, metrics_read, windows_by_metric
from telemetry.alerting.rules import condition, number
from telemetry.catalogue import Kind
from telemetry.model import Family, HistogramValue, Sample
from tests.support.monitoring_tools import assert_ok, run_tool

STEP, STEPS = 10, 16
NOW = float((STEPS - 1) * STEP)
JOB, INSTANCE = "yolo", "x:1"


def alert(**fields: object) -> AlertDefinition:
    return AlertDefinition.model_validate({"name": "A", "threshold": 0, "summary": "s",
                                           **fields})


STALLED = {
    "metric": "yolo.agent.last_event.timestamp", "kind": "age", "threshold": 300,
    "by": ["agent"], "unless": [{"metric": "yolo.agent.tool_call.started.timestamp"}],
    "or": [{"metric": "yolo.agent.tool_call.started.timestamp", "kind": "age",
            "threshold": 1800}]}


@pytest.mark.parametrize(("fields", "promql"), [
    ({"metric": "yolo.workflow.oldest_start.timestamp", "kind": "age", "threshold": 3600},
     "time() - min by (job, instance) (yolo_workflow_oldest_start_timestamp_seconds > 0) "
     "> 3600"),
    (STALLED,
     "(time() - min by (job, instance, agent) (yolo_agent_last_event_timestamp_seconds > 0) "
     "> 300 unless on (job, instance, agent) (max by (job, instance, agent) "
     "(yolo_agent_tool_call_started_timestamp_seconds))) or "
     "(time() - min by (job, instance, agent) "
     "(yolo_agent_tool_call_started_timestamp_seconds > 0) > 1800)"),
    ({"metric": "yolo.mode.changed.timestamp", "kind": "age", "threshold": 1800,
      "and": [{"metric": "yolo_mode", "match": {"mode": "paused"}, "comparison": "==",
               "threshold": 1}]},
     "time() - min by (job, instance) (yolo_mode_changed_timestamp_seconds > 0) > 1800 "
     'and on (job, instance) (max by (job, instance) (yolo_mode{mode="paused"}) == 1)'),
    ({"metric": "yolo.handoff.loops", "kind": "increase", "window": "10m", "by": ["agent"],
      "comparison": ">=", "threshold": 3},
     "sum by (job, instance, agent) (increase(yolo_handoff_loops_total[10m])) >= 3"),
    ({"metric": "yolo.llm.token.usage", "kind": "increase", "histogram_value": "sum",
      "match": {"token_type": ["input", "output"]}, "window": "1h", "by": ["agent"],
      "threshold": 5e6},
     "sum by (job, instance, agent) "
     '(increase(yolo_llm_token_usage_sum{token_type=~"input|output"}[1h])) > 5e+06'),
    ({"metric": "yolo.errors", "kind": "rate", "window": "1m",
      "match": {"error_type": ["a.b", "c|d"]}},
     'sum by (job, instance) (rate(yolo_errors_total{error_type=~"a\\\\.b|c\\\\|d"}[1m])) > 0'),
])
def test_the_new_readings_become_the_right_promql(fields: dict, promql: str) -> None:
    assert condition(alert(**fields)) == promql


@pytest.mark.parametrize(("change", "message"), [
    ({"metric": "yolo.context.tokens", "kind": "age"}, "is not a timestamp"),
    ({"metric": "yolo.handoff.loops", "kind": "age"}, "is not a timestamp"),
    ({"metric": "yolo.mode.changed.timestamp", "kind": "age", "window": "1m"},
     "kind age takes no window"),
    ({"metric": "yolo.handoff.loops", "kind": "increase"}, "kind increase needs a window"),
    ({"metric": "yolo.handoff.loops", "kind": "increase", "window": "1m",
      "histogram_value": "sum"}, "histogram_value sum applies"),
    ({"metric": "yolo.mode.changed.timestamp", "kind": "age",
      "and": [{"metric": "yolo_mode", "match": {"outcome": "x"}}]},
     "match: yolo_mode has no label outcome"),
    ({"metric": "yolo.mode.changed.timestamp", "kind": "age",
      "unless": [{"metric": "yolo.llm.token.usage"}]}, "is a histogram"),
    ({**STALLED, "or": [{"metric": "yolo.workflows.in_flight", "threshold": 1}]},
     "by: yolo_workflows_in_flight has no label agent"),
    ({"metric": "yolo.errors", "kind": "rate", "window": "1m",
      "match": {"error_type": []}}, "at least 1 item"),
])
def test_inconsistent_readings_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        alert(**change)


# -- in-process against promtool ---------------------------------------------------


def _counter(start: int, *increments: float) -> list[float | None]:
    values: list[float | None] = []
    total = 0.0
    for step in range(STEPS):
        if step < start:
            values.append(None)
            continue
        total += increments[step % len(increments)]
        values.append(total)
    return values


def _tokens(start: int, *increments: int) -> list[HistogramValue | None]:
    sums = _counter(start, *increments)
    return [None if s is None else HistogramValue((0,) * 15, s, step)
            for step, s in enumerate(sums)]


def _histories() -> dict:
    """Values per metric, label set and step (None: not yet seen); timestamps are
    seconds since the test's epoch, as promtool's time() counts them."""
    steady = [float(step * STEP) for step in range(STEPS)]  # an event every step
    return {
        cat.AGENT_LAST_EVENT: {("dev",): [10.0] * STEPS,       # silent: age 140
                               ("qa",): steady,                 # busy: age 0
                               ("pm",): [20.0] * STEPS,         # silent, in a tool call
                               ("po",): [None] * 8 + [100.0] * 8},
        cat.AGENT_TOOL_CALL_STARTED: {("pm",): [30.0] * STEPS},  # age 120
        cat.WORKFLOW_OLDEST_START: {(): [0.0] * 8 + [40.0] * 8},  # 0: none in flight
        cat.MODE_CHANGED: {(): [25.0] * STEPS},
        cat.MODE: {("paused",): [1.0] * STEPS, ("active",): [0.0] * STEPS},
        cat.STATE_LAST_SAVE: {(): [0.0] * STEPS},  # never saved: no age
        cat.WORKFLOWS_IN_FLIGHT: {(): [2.0] * STEPS},
        cat.HANDOFF_LOOPS: {("dev",): _counter(3, 1, 0), ("qa",): _counter(0, 0, 0, 1)},
        cat.LLM_TOKEN_USAGE: {("dev", "m", "input"): _tokens(0, 9000, 12000),
                              ("dev", "m", "output"): _tokens(0, 800),
                              ("dev", "m", "cached_input"): _tokens(0, 7000),
                              ("qa", "m", "input"): _tokens(2, 300)},
        cat.LLM_COST: {("qa", "m"): _counter(0, 0.5), ("dev", "m"): _counter(0, 0.01)},
    }


CROSS_CHECKED = [
    {**STALLED, "name": "Stalled", "threshold": 60,
     "or": [{**STALLED["or"][0], "threshold": 100}]},
    {"name": "Stuck", "metric": "yolo.workflow.oldest_start.timestamp", "kind": "age",
     "threshold": 60},
    {"name": "Paused", "metric": "yolo.mode.changed.timestamp", "kind": "age",
     "threshold": 60, "and": [{"metric": "yolo_mode", "match": {"mode": "paused"},
                               "comparison": "==", "threshold": 1}]},
    {"name": "NotPausedActive", "metric": "yolo.mode.changed.timestamp", "kind": "age",
     "threshold": 60, "and": [{"metric": "yolo_mode", "match": {"mode": "active"},
                               "comparison": "==", "threshold": 1}]},
    {"name": "NotSaved", "metric": "yolo.state.last_save.timestamp", "kind": "age",
     "threshold": 60, "and": [{"metric": "yolo.workflows.in_flight", "threshold": 0}]},
    {"name": "Loops", "metric": "yolo.handoff.loops", "kind": "increase", "window": "60s",
     "by": ["agent"], "comparison": ">=", "threshold": 2.5},
    {"name": "Budget", "metric": "yolo.llm.token.usage", "kind": "increase",
     "histogram_value": "sum", "match": {"token_type": ["input", "output"]},
     "window": "90s", "by": ["agent"], "threshold": 50000,
     "or": [{"metric": "yolo.llm.cost", "kind": "increase", "window": "90s",
             "threshold": 2}]},
    {"name": "TokenRate", "metric": "yolo.llm.token.usage", "kind": "rate",
     "histogram_value": "sum", "match": {"token_type": "cached_input"}, "window": "60s",
     "threshold": 0},
]
#: The label sets each alert must find, so the cross-check cannot pass vacuously.
EXPECTED = {"Stalled": {("dev",), ("pm",)}, "Stuck": {()}, "Paused": {()},
            "NotPausedActive": set(), "NotSaved": set(), "Loops": {("dev",)},
            "Budget": {("dev",), ("qa",)}, "TokenRate": {()}}


def _series(histories: dict) -> list[dict]:
    def text(values: list) -> str:
        return " ".join("_" if v is None else number(v) for v in values)

    series = []
    for spec, by_labels in histories.items():
        for labels, values in by_labels.items():
            pairs = ", ".join([f'job="{JOB}"', f'instance="{INSTANCE}"',
                               *(f'{k}="{v}"' for k, v in zip(spec.labels, labels,
                                                               strict=True))])
            if spec.kind is Kind.HISTOGRAM:
                sums = [None if v is None else v.sum for v in values]
                series.append({"series": f"{spec.prometheus_name}_sum{{{pairs}}}",
                               "values": text(sums)})
            else:
                series.append({"series": f"{spec.prometheus_name}{{{pairs}}}",
                               "values": text(values)})
    return series


def test_conditions_evaluate_in_process_exactly_as_in_prometheus(tmp_path: Path) -> None:
    histories = _histories()
    alerts = [alert(**fields) for fields in CROSS_CHECKED]
    ring = SampleRing(retention_s=3600, max_samples=1000,
                      windowed=metrics_read(alerts, windowed=True))
    for step in range(STEPS):
        families = [Family(spec, tuple(Sample(labels, values[step], 0.0)
                                       for labels, values in by_labels.items()
                                       if values[step] is not None))
                    for spec, by_labels in histories.items()]
        ring.add(float(step * STEP), families, wall=float(step * STEP))
    checks = []
    for definition in alerts:
        found = breaching(definition, ring, NOW)
        assert set(found) == EXPECTED[definition.name], (definition.name, found)
        samples = []
        for key, value in sorted(found.items()):
            labels = [f'job="{JOB}"', f'instance="{INSTANCE}"',
                      *(f'{k}="{v}"' for k, v in zip(definition.by, key, strict=True))]
            samples.append({"labels": "{" + ", ".join(labels) + "}", "value": value})
        checks.append({"expr": condition(definition), "eval_time": f"{int(NOW)}s",
                       "exp_samples": samples})
    # The or reading gives pm its value (its tool call's age), the unless drops its
    # idle age; 0 timestamps have no age.
    assert breaching(alerts[0], ring, NOW) == {("dev",): 140.0, ("pm",): 120.0}
    test_file = tmp_path / "conditions_test.yml"
    test_file.write_text(yaml.safe_dump({
        "rule_files": [], "evaluation_interval": f"{STEP}s",
        "tests": [{"interval": f"{STEP}s", "input_series": _series(histories),
                   "promql_expr_test": checks}]}, width=1000))
    assert_ok(run_tool("promtool", "test", "rules", str(test_file)))


def test_an_age_needs_the_wall_clock_of_its_sample() -> None:
    ring = SampleRing(retention_s=60, max_samples=10)
    ring.add(1.0, [Family(cat.WORKFLOW_OLDEST_START, (Sample((), 5.0, 0.0),))])
    definition = alert(metric="yolo.workflow.oldest_start.timestamp", kind="age")
    with pytest.raises(ValueError, match="wall-clock"):
        breaching(definition, ring, 1.0)


def test_each_metric_keeps_only_the_history_its_longest_window_needs() -> None:
    """An hour-long budget must not make every other metric's history an hour long."""
    errors = alert(name="E", metric="yolo.errors", kind="rate", window="10s")
    decisions = alert(name="D", metric="yolo.decisions", kind="increase", window="100s",
                      **{"or": [{"metric": "yolo.errors", "kind": "rate", "window": "20s",
                                 "threshold": 1}]})
    windows = windows_by_metric([errors, decisions])
    assert windows == {cat.ERRORS: 20.0, cat.DECISIONS: 100.0}
    ring = SampleRing(102, 1000, windowed=metrics_read([errors, decisions], windowed=True),
                      retention_by_spec={spec: w + 2 for spec, w in windows.items()})
    for t in range(300):
        ring.add(float(t), [Family(cat.ERRORS, (Sample(("a", "x"), float(t), 0.0),)),
                            Family(cat.DECISIONS, (Sample(("a", "y"), float(t), 0.0),)),
                            Family(cat.CONTEXT_TOKENS, (Sample(("a",), 1.0, 0.0),))])
    assert len(dict(ring.points(cat.ERRORS, 0, 299))[("a", "x")]) == 23
    assert len(dict(ring.points(cat.DECISIONS, 0, 299))[("a", "y")]) == 103
    assert ring.points(cat.CONTEXT_TOKENS, 0, 299) == []
    assert ring.latest() is not None and cat.CONTEXT_TOKENS in ring.latest().series
    assert len(ring) == 103


@pytest.mark.parametrize(("value", "text"), [
    (9000, "9000"), (0.1, "0.1"), (0, "0"), (-3, "-3"), (5e6, "5e+06"),
    (1234567, "1.234567e+06"), (12.000000000000002, "12.000000000000002"),
    (0.0001, "0.0001"), (1e-05, "1e-05"), (float("inf"), "+Inf")])
def test_numbers_are_spelled_as_prometheus_prints_them(value: float, text: str) -> None:
    """Prometheus shows a loaded rule's numbers in Go's shortest %g: the generated rule
    reads back exactly (``5e+06``, not ``5000000``)."""
    assert number(value) == text
