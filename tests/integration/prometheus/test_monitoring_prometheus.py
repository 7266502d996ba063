"""A real Prometheus scrapes the reference orchestrator: dashboard queries and alerts.

The same alert definitions (short windows, so the test is quick) drive the rules
Prometheus loads and the in-process evaluator; an error burst and a context blow-up
must fire in both within the expected time and clear in both when they end.
Disagreement (one fires or clears and the other does not, in time) fails the test.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from telemetry import Telemetry
from telemetry import catalogue as cat
from telemetry.artefacts.dashboard import queries
from telemetry.artefacts.render import render
from telemetry.cli.simulator import ReferenceOrchestrator
from tests.conftest import send
from tests.support.backends import free_port, prometheus_server, wait_until

pytestmark = pytest.mark.backend

WINDOW_S, FOR_S, EVAL_S = 10.0, 2.0, 0.5
TEST_ALERTS = [
    {"name": "TestErrorBurst", "metric": "yolo_errors_total", "kind": "rate",
     "window": f"{WINDOW_S:g}s", "threshold": 2, "for": f"{FOR_S:g}s", "severity": "critical",
     "summary": "{{ $value | humanize }} errors/s"},
    {"name": "TestContextOverflow", "metric": "yolo.context.tokens", "threshold": 50000,
     "for": f"{FOR_S:g}s", "by": ["agent"], "severity": "warning",
     "summary": "{{ $labels.agent }} holds {{ $value | humanize }} tokens"},
]
#: Firing needs ``for`` plus a few scrapes and evaluations; clearing needs the error
#: burst to leave the rate window. Generous for a loaded 2-core CI machine.
FIRE_WITHIN_S = FOR_S + 15.0
CLEAR_WITHIN_S = WINDOW_S + 15.0
#: How far apart Prometheus (1s scrape + 1s evaluation) and the in-process evaluator
#: (0.5s) may see the same transition.
AGREE_WITHIN_S = 6.0


def config(dead_port: int) -> dict[str, Any]:
    return {
        "server": {"port": 0},
        "alerts": TEST_ALERTS,
        "alerting": {"evaluation_interval_s": EVAL_S, "webhook": {
            "enabled": True, "url": f"http://127.0.0.1:{dead_port}/alerts",
            "max_retries": 1, "backoff_s": 0.05, "timeout_s": 1}},
        "limits": {"max_series_per_metric": 100},
    }


class Observed:
    """When each alert was first seen firing, and first seen clear, on each side."""

    def __init__(self) -> None:
        self.fired: dict[tuple[str, str], float] = {}
        self.cleared: dict[tuple[str, str], float] = {}


def prometheus_firing(prometheus) -> dict[str, dict[str, str]]:
    return {a["labels"]["alertname"]: a["labels"] for a in prometheus.alerts()
            if a["state"] == "firing"}


def in_process_firing(tel: Telemetry) -> dict[str, dict[str, str]]:
    assert tel.alerting is not None
    return {inst.name: inst.labels for inst in tel.alerting.firing()}


def watch(tel: Telemetry, prometheus, names: list[str], *, firing: bool, since: float,
          within: float) -> dict[tuple[str, str], float]:
    """Poll both sides until every alert in ``names`` is (not) firing on both; return
    the seconds after ``since`` at which each side got there."""
    seen: dict[tuple[str, str], float] = {}

    def done() -> bool:
        now = time.monotonic() - since
        for side, state in (("prometheus", prometheus_firing(prometheus)),
                            ("in-process", in_process_firing(tel))):
            for name in names:
                if (name in state) == firing:
                    seen.setdefault((side, name), now)
        return len(seen) == 2 * len(names)

    try:
        wait_until(done, within, what=f"{names} {'firing' if firing else 'clear'} on both")
    except AssertionError as error:
        raise AssertionError(f"{error}; reached so far: {seen}") from None
    return seen


def assert_agree(seen: dict[tuple[str, str], float], names: list[str]) -> None:
    for name in names:
        gap = abs(seen[("prometheus", name)] - seen[("in-process", name)])
        assert gap <= AGREE_WITHIN_S, (
            f"{name}: Prometheus and the in-process evaluator disagree by {gap:.1f}s: {seen}")


def dashboard_query(expr: str, port: int) -> str:
    return (expr.replace("$__rate_interval", "20s").replace("$job", "yolo")
            .replace("$instance", f"127.0.0.1:{port}"))


@pytest.fixture
def orchestrator(start_telemetry: Callable[..., Telemetry]) -> Iterator[
        tuple[Telemetry, ReferenceOrchestrator, dict]]:
    settings = config(free_port())
    tel = start_telemetry(settings)
    stop = threading.Event()
    orch = ReferenceOrchestrator(
        seed=5, error_probability=0.0, safety_block_probability=0.1, events_per_s=400,
        work=lambda: tel.aggregator.observe(cat.OPERATION_DURATION, ("agent_step",), 0.002),
        stop_event=stop)
    worker = threading.Thread(target=orch.run, name="reference-orchestrator", daemon=True)
    worker.start()
    yield tel, orch, settings
    stop.set()
    worker.join(10)


def test_dashboard_queries_and_alerts_against_a_real_prometheus(
        orchestrator, tmp_path: Path) -> None:
    tel, orch, settings = orchestrator
    port = tel.server.port
    rules = tmp_path / "rules.yml"
    rules.write_text(render("alerts", settings))  # the definitions the evaluator runs
    # Problems the self-metric panels show: an invalid event and a label-set overflow.
    send("handoff_completed", from_agent="pm")
    for number in range(120):
        send("safety_blocked", agent="probe", rule=f"rule-{number}")
    # What the agent operations panels show only when something is wrong: a handoff
    # loop, a repeated tool call, a tool call that never returns, a workflow in flight.
    send_operations_problems()

    with prometheus_server(tmp_path, [f"127.0.0.1:{port}"], rule_files=[rules],
                           scrape_interval="1s", evaluation_interval="1s") as prometheus:
        prometheus.wait_for_targets_up(1)
        wait_until(lambda: all(rule["health"] == "ok" for group in prometheus.rules("alert")
                               for rule in group["rules"]) and tel.alerting.evaluations > 2,
                   30, what="rules evaluated on both sides")
        names = [alert["name"] for alert in TEST_ALERTS]
        assert prometheus_firing(prometheus) == {} and in_process_firing(tel) == {}
        # With nothing firing, the "Firing alerts" stat reads 0 (not "No data").
        document = json.loads(render("dashboard", settings))
        stat = next(p for p in document["panels"] if p.get("title") == "Firing alerts")
        for target in stat["targets"]:
            results = prometheus.query(dashboard_query(target["expr"], port))
            assert [float(r["value"][1]) for r in results] == [0.0], target["expr"]

        # The incident: every agent step errors, and one agent's context explodes.
        started = time.monotonic()
        orch.error_probability = 1.0
        send("context_updated", agent="probe", items=300, tokens=60000)
        fired = watch(tel, prometheus, names, firing=True, since=started,
                      within=FIRE_WITHIN_S)
        assert_agree(fired, names)
        print(f"fired after (s): {fired}")
        assert all(seconds >= FOR_S for seconds in fired.values()), fired
        prom_labels, own_labels = prometheus_firing(prometheus), in_process_firing(tel)
        for name in names:
            assert prom_labels[name]["job"] == "yolo"
            assert prom_labels[name]["instance"] == f"127.0.0.1:{port}"
            without_target = {k: v for k, v in prom_labels[name].items()
                              if k not in ("job", "instance")}
            assert without_target == own_labels[name]
        prometheus.wait_for('yolo_alerts_firing{alertname="TestErrorBurst"} == 1')
        health = json.load(_get_error(f"{tel.url}/health"))
        assert health["status"] == "unhealthy"
        assert {f["alertname"] for f in health["checks"]["alerts"]["firing"]} == set(names)

        # Every query of every dashboard panel returns data from the live orchestrator
        # (the loop and repeat counters need a second sample to have an increase).
        send_operations_problems()
        for expr in queries(document):
            promql = dashboard_query(expr, port)
            result = wait_until(lambda promql=promql: [
                r for r in prometheus.query(promql) if not math.isnan(float(r["value"][1]))],
                20, what=f"data for {promql}")
            assert result, promql
        variables = {v["name"]: v["query"] for v in document["templating"]["list"]}
        assert _label_values(prometheus, variables["job"], port) == ["yolo"]
        assert _label_values(prometheus, variables["instance"], port) == [f"127.0.0.1:{port}"]
        webhook = tel.health()["checks"]["alert_webhook"]
        assert webhook["status"] == "failing" and webhook["dropped"] >= 1
        assert set(prometheus_firing(prometheus)) == set(in_process_firing(tel)) == set(names)

        # The incident ends: both sides clear.
        ended = time.monotonic()
        orch.error_probability = 0.0
        send("context_updated", agent="probe", items=1, tokens=100)
        cleared = watch(tel, prometheus, names, firing=False, since=ended,
                        within=CLEAR_WITHIN_S)
        assert_agree(cleared, names)
        print(f"cleared after (s): {cleared}")
        prometheus.wait_for('yolo_alerts_firing{alertname="TestErrorBurst"} == 0')
        assert tel.health()["checks"]["alerts"]["status"] == "ok"


def send_operations_problems() -> None:
    send("workflow_started", workflow_id="probe-stuck")
    send("agent_activated", agent="probe")
    send("tool_started", agent="probe", tool="hang")
    for from_agent, to_agent in (("probe", "probe-b"), ("probe-b", "probe")):
        send("handoff_completed", from_agent=from_agent, to_agent=to_agent, duration_s=0.1,
             workflow_id="probe-loop")
    for _ in range(3):
        send("tool_completed", agent="probe", tool="grep", duration_s=0.01,
             call_key="grep:same")


def _get_error(url: str):
    """GET a URL expected to answer with an HTTP error status; return the response."""
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError as error:
        return error
    raise AssertionError(f"{url} answered 200")


def _label_values(prometheus, variable_query: str, port: int) -> list[str]:
    """Run a Grafana ``label_values(series, label)`` variable query the way Grafana does."""
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable_query)
    assert match, variable_query
    series = match.group(1).replace("$job", "yolo")
    return list(prometheus.api(f"label/{match.group(2)}/values", **{"match[]": series}))
