"""The Grafana dashboard: generated, in sync, complete, and consistent with the alerts."""

from __future__ import annotations

import json
import re

from telemetry import catalogue as cat
from telemetry.artefacts.dashboard import queries
from telemetry.artefacts.render import DASHBOARD_FILE, render
from tests.support.monitoring_tools import ROOT

_SUFFIXES = ("", "_bucket", "_count", "_sum")
_KNOWN = {spec.prometheus_name + suffix for spec in cat.CATALOGUE for suffix in _SUFFIXES}


def dashboard(config: dict | None = None) -> dict:
    return json.loads(render("dashboard", config or {}))


def test_the_committed_dashboard_is_what_render_produces() -> None:
    committed = (ROOT / DASHBOARD_FILE).read_text(encoding="utf-8")
    assert committed == render("dashboard", {}), (
        "config/grafana/yolo-overview.json is stale: run "
        "yolo-telemetry render dashboard -o config/grafana/yolo-overview.json")


def test_job_and_instance_variables_select_what_every_query_reads() -> None:
    document = dashboard()
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["multi"] and variables[name]["includeAll"]
        assert f", {name})" in variables[name]["query"]
    exprs = queries(document)
    assert len(exprs) >= 40
    for expr in exprs:
        for selector in re.findall(r"\b(?:yolo_\w+|ALERTS)\{[^}]*\}", expr):
            assert 'job=~"$job"' in selector and 'instance=~"$instance"' in selector, expr


#: The agent-operations metrics, until the dashboard's "Agent operations" row shows
#: them (the row's change empties this set).
_AGENT_OPERATIONS_ROW_PENDING = {
    cat.LLM_CALLS, cat.LLM_ERRORS, cat.LLM_CALL_DURATION, cat.LLM_TOKEN_USAGE, cat.LLM_COST,
    cat.TOOL_CALLS, cat.TOOL_ERRORS, cat.TOOL_CALL_DURATION, cat.TOOL_CALL_REPEATS,
    cat.HANDOFF_LOOPS, cat.AGENT_LAST_EVENT, cat.AGENT_TOOL_CALL_STARTED,
    cat.WORKFLOWS_IN_FLIGHT, cat.WORKFLOW_OLDEST_START, cat.MODE_TIME, cat.MODE_CHANGED,
    cat.STATE_LAST_SAVE,
}


def test_queries_only_name_catalogue_metrics_and_cover_all_of_them() -> None:
    exprs = queries(dashboard())
    used = {name for expr in exprs for name in re.findall(r"\byolo_\w+", expr)}
    assert used <= _KNOWN, used - _KNOWN
    missing = [spec.prometheus_name for spec in cat.CATALOGUE
               if not any(name.startswith(spec.prometheus_name) for name in used)
               and spec not in _AGENT_OPERATIONS_ROW_PENDING]
    assert missing == []
    assert any(expr.startswith("histogram_quantile(0.95, sum by (le)") for expr in exprs)


def test_the_panels_the_guide_promises_are_there() -> None:
    titles = {panel["title"] for panel in dashboard()["panels"]}
    assert {"Handoff rate by from → to", "Decision rate by type", "Context tokens per agent",
            "Error rate", "Error ratio per agent", "Handoff latency", "Decision latency",
            "Active agents", "Workflow throughput", "Workflow failure ratio",
            "Safety blocks by rule", "State save and load p95", "Resident memory", "CPU",
            "Telemetry problems", "Firing alerts in Prometheus",
            "Firing alerts in the orchestrator"} <= titles


def test_every_panel_is_wired_to_the_datasource_variable() -> None:
    panels = [p for p in dashboard()["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and all(t["refId"] for t in panel["targets"])
        assert panel["gridPos"]["w"] > 0 and panel["gridPos"]["h"] > 0


def _threshold_steps(document: dict, title: str) -> list:
    panel = next(p for p in document["panels"] if p["title"] == title)
    return [(s["value"], s["color"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]
            ["steps"]]


def test_threshold_lines_come_from_the_alerts_in_force() -> None:
    assert _threshold_steps(dashboard(), "Context tokens per agent") == [
        (None, "green"), (9000, "red")]
    custom = dashboard({"alerts": [
        {"name": "Tokens", "metric": "yolo.context.tokens", "threshold": 5000,
         "severity": "warning", "summary": "s"},
        {"name": "TokensCritical", "metric": "yolo.context.tokens", "threshold": 8000,
         "severity": "critical", "summary": "s"}]})
    assert _threshold_steps(custom, "Context tokens per agent") == [
        (None, "green"), (5000, "orange"), (8000, "red")]
    assert _threshold_steps(custom, "Error rate") == [(None, "green")]


def _panel(document: dict, title: str) -> dict:
    return next(panel for panel in document["panels"] if panel.get("title") == title)


def test_the_firing_alerts_stat_reads_0_when_nothing_fires() -> None:
    # ALERTS has no series while nothing fires; without a fallback the stat reads
    # "No data". Every query of the stat must yield a number on its own.
    targets = _panel(dashboard(), "Firing alerts")["targets"]
    assert len(targets) == 2
    for target in targets:
        assert target["expr"].endswith(" or vector(0)"), target["expr"]


def test_the_error_ratio_panel_says_how_it_differs_from_the_snapshot() -> None:
    description = _panel(dashboard(), "Error ratio per agent")["description"]
    assert "errors + decisions" in description
    assert "agent_error_rate" in description and "handoffs" in description
