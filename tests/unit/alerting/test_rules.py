"""Generated Prometheus rules: correct PromQL, committed copy in sync, promtool-clean."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from telemetry.alerting.builtins import DEFAULT_ALERTS
from telemetry.alerting.definitions import AlertDefinition
from telemetry.alerting.rules import expression, render_rules, rule
from telemetry.artefacts.render import ALERTS_FILE, render
from tests.support.monitoring_tools import ROOT, assert_ok, run_tool

PROMTOOL_TESTS = ROOT / "tests/support/promtool/alerts_test.yml"


def definition(**fields) -> AlertDefinition:
    return AlertDefinition.model_validate({"name": "A", "threshold": 1, "summary": "s",
                                           **fields})


@pytest.mark.parametrize(("fields", "promql"), [
    ({"metric": "yolo.context.tokens", "by": ["agent"]},
     "max by (job, instance, agent) (yolo_context_tokens)"),
    ({"metric": "yolo_mode", "aggregate": "min", "match": {"mode": "degraded"}},
     'min by (job, instance) (yolo_mode{mode="degraded"})'),
    ({"metric": "yolo.errors", "kind": "rate", "window": "5m"},
     "sum by (job, instance) (rate(yolo_errors_total[5m]))"),
    ({"metric": "yolo.handoff.duration", "kind": "rate", "window": "1m",
      "match": {"to_agent": "qa"}},
     'sum by (job, instance) (rate(yolo_handoff_duration_seconds_count{to_agent="qa"}[1m]))'),
    ({"metric": "yolo.workflows", "kind": "ratio", "window": "15m",
      "match": {"outcome": "failed"}},
     '(sum by (job, instance) (rate(yolo_workflows_total{outcome="failed"}[15m])) / '
     'sum by (job, instance) (rate(yolo_workflows_total[15m])))'),
    ({"metric": "yolo.errors", "kind": "ratio", "window": "10m", "denominator": "yolo.decisions",
      "by": ["agent"]},
     "(sum by (job, instance, agent) (rate(yolo_errors_total[10m])) / "
     "sum by (job, instance, agent) (rate(yolo_decisions_total[10m])))"),
    ({"metric": "yolo_handoff_duration_seconds", "kind": "quantile", "quantile": 0.95,
      "window": "5m"},
     "histogram_quantile(0.95, sum by (le, job, instance) "
     "(rate(yolo_handoff_duration_seconds_bucket[5m])))"),
])
def test_each_kind_becomes_the_right_promql(fields: dict, promql: str) -> None:
    assert expression(definition(**fields)) == promql


def test_grouping_labels_are_configurable_and_thresholds_compared() -> None:
    alert = definition(metric="yolo.errors", kind="rate", window="2m", by=["agent"],
                       comparison=">=", threshold=0.25, **{"for": "90s"})
    entry = rule(alert, group_labels=[])
    assert entry["expr"] == "sum by (agent) (rate(yolo_errors_total[2m])) >= 0.25"
    assert entry["for"] == "1m30s"
    assert "for" not in rule(definition(metric="yolo.errors", kind="rate", window="1m"))


def test_the_committed_rules_file_is_what_render_produces() -> None:
    committed = (ROOT / ALERTS_FILE).read_text(encoding="utf-8")
    assert committed == render("alerts", {}), (
        "config/prometheus/yolo-alerts.yml is stale: run "
        "yolo-telemetry render alerts -o config/prometheus/yolo-alerts.yml")


def test_promtool_accepts_the_generated_rules(tmp_path: Path) -> None:
    output = assert_ok(run_tool("promtool", "check", "rules", str(ALERTS_FILE)))
    assert f"SUCCESS: {len(DEFAULT_ALERTS)} rules found" in output
    # Every kind and option, not just the defaults.
    everything = [
        definition(name="V", metric="yolo.context.items", aggregate="avg", by=["agent"],
                   comparison="<", summary="{{ $labels.agent }} {{ $value }}"),
        definition(name="R", metric="yolo.errors", kind="ratio", window="10m",
                   denominator="yolo.decisions", by=["agent"], comparison="!=",
                   runbook_url="https://runbooks.example/r"),
        definition(name="Q", metric="yolo.decision.duration", kind="quantile", quantile=0.5,
                   window="30s", by=["agent"], comparison="<=",
                   summary="{{ $value | printf \"%.3f\" }}"),
    ]
    path = tmp_path / "rules.yml"
    path.write_text(render_rules(everything))
    assert "SUCCESS: 3 rules found" in assert_ok(run_tool("promtool", "check", "rules",
                                                          str(path)))


def test_promtool_unit_tests_show_each_default_alert_firing_and_not() -> None:
    tests = yaml.safe_load(PROMTOOL_TESTS.read_text())
    fires, quiet = set(), set()
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            (fires if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {alert.name for alert in DEFAULT_ALERTS}
    assert names <= fires, f"no firing case for {names - fires}"
    assert names <= quiet, f"no quiet case for {names - quiet}"
    assert "SUCCESS" in assert_ok(run_tool("promtool", "test", "rules", str(PROMTOOL_TESTS)))


def test_promtool_unit_tests_fail_when_a_threshold_changes(tmp_path: Path) -> None:
    """The unit tests pin the thresholds: loosening one must break them."""
    changed = [alert.model_copy(update={"threshold": 100000.0})
               if alert.name == "ContextOverflow" else alert for alert in DEFAULT_ALERTS]
    rules = tmp_path / "config/prometheus/yolo-alerts.yml"
    rules.parent.mkdir(parents=True)
    rules.write_text(render_rules(changed))
    (tmp_path / "tests/support/promtool").mkdir(parents=True)
    copy = tmp_path / "tests/support/promtool/alerts_test.yml"
    copy.write_text(PROMTOOL_TESTS.read_text())
    result = run_tool("promtool", "test", "rules", str(copy))
    assert result.returncode != 0
    assert "alertname: ContextOverflow" in result.stdout + result.stderr


def test_render_prints_to_stdout_and_rejects_a_bad_config(capsys, tmp_path: Path) -> None:
    from telemetry.cli.main import main

    assert main(["render", "alerts"]) == 0
    assert capsys.readouterr().out == render("alerts", None)
    bad = tmp_path / "bad.yaml"
    bad.write_text("alerts:\n  - {name: X, metric: yolo_nope, threshold: 1, summary: s}\n")
    assert main(["render", "alerts", "--config", str(bad)]) == 2
    assert "alerts.0.metric: no metric 'yolo_nope'" in capsys.readouterr().err
