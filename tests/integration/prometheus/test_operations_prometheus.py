"""A real Prometheus scrapes the reference orchestrator through its agent-operations
incidents: each new alert fires and clears in Prometheus and in-process together.

The orchestrator runs 50 times faster than real time (its one time scale), and the
alerts are the built-in definitions (their metrics, matchers, ``and``/``unless``
conditions and ``or`` readings) with 8-second windows and budgets to match, so each
incident takes seconds. The agreement tolerance is the one the other monitoring test
uses. WorkflowStuck, ModeStuckPaused and StateNotSaved, which no incident stages,
are driven by signals sent by hand. ``yolo-telemetry demo --incident stall`` itself is
run as a user runs it, with Prometheus loading the rules it writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from telemetry import Telemetry
from telemetry.alerting.builtins import DEFAULT_ALERTS
from telemetry.artefacts.render import render
from telemetry.cli.incidents import Incident
from telemetry.cli.simulator import ReferenceOrchestrator
from tests.conftest import send
from tests.integration.prometheus.test_monitoring_prometheus import (
    AGREE_WITHIN_S,
    assert_agree,
    in_process_firing,
    prometheus_firing,
    watch,
)
from tests.support.backends import free_port, prometheus_server, wait_until
from tests.support.monitoring_tools import ROOT

pytestmark = pytest.mark.backend

TIME_SCALE = 0.02  # 50 simulated seconds per real second
WINDOW_S, EVAL_S = 8.0, 0.5
HEALTHY_S, INCIDENT_S = 3.0, 12.0  # real seconds
FIRE_WITHIN_S = 20.0
CLEAR_WITHIN_S = WINDOW_S + 15.0


def _shortened(name: str, **changes: Any) -> dict[str, Any]:
    """A built-in alert, as config, with test timings (its or readings in ``or_``)."""
    (alert,) = [a for a in DEFAULT_ALERTS if a.name == name]
    branches = changes.pop("or_", None)
    data = alert.model_dump(by_alias=True, exclude_defaults=True)
    data.update(changes)
    if branches is not None:
        data["or"] = [{**reading, **branch} for reading, branch in
                      zip(data["or"], branches, strict=True)]
    return data


#: Budgets at this time scale: a healthy agent is never silent for 3 real seconds
#: (150 simulated); a healthy agent uses some 70k tokens and 0.25 USD in a window of
#: 8 real seconds (400 simulated), a runaway one millions of tokens and tens of dollars.
TEST_ALERTS = [
    _shortened("AgentStalled", threshold=3, or_=[{"threshold": 30}]),
    # Two loops back to one agent in 8 real seconds: a round of rework can take two
    # seconds when its agents run tests.
    _shortened("HandoffLoop", window=f"{WINDOW_S:g}s", threshold=2),
    _shortened("ToolCallRepeating", window=f"{WINDOW_S:g}s"),
    _shortened("TokenBudgetBurn", window=f"{WINDOW_S:g}s", threshold=1_000_000,
               or_=[{"window": f"{WINDOW_S:g}s", "threshold": 5}]),
]
NAMES = [alert["name"] for alert in TEST_ALERTS]


def _wait_for_incident(orchestrator: ReferenceOrchestrator, state: str,
                       within: float) -> float:
    kind = orchestrator.incident.kind if orchestrator.incident else ""
    wait_until(lambda: orchestrator.stats.incident == f"{kind} ({state})", within,
               what=f"incident {kind} {state}", interval=0.02, max_interval=0.05)
    return time.monotonic()


@pytest.mark.parametrize("kind", ["loop", "tokens", "stall"])
def test_an_operations_incident_fires_and_clears_on_both_sides(
        kind: str, start_telemetry: Callable[..., Telemetry], tmp_path: Path) -> None:
    settings = {"server": {"port": 0}, "alerts": TEST_ALERTS,
                "alerting": {"evaluation_interval_s": EVAL_S}}
    tel = start_telemetry(settings)
    rules = tmp_path / "rules.yml"
    rules.write_text(render("alerts", settings))  # the definitions the evaluator runs
    incident = Incident(kind, start_s=HEALTHY_S / TIME_SCALE,
                        duration_s=INCIDENT_S / TIME_SCALE)
    names = list(incident.alerts)
    stop = threading.Event()
    orchestrator = ReferenceOrchestrator(seed=11, time_scale=TIME_SCALE, stop_event=stop,
                                         incident=incident)
    worker = threading.Thread(target=orchestrator.run, name="reference-orchestrator",
                              daemon=True)
    with prometheus_server(tmp_path, [f"127.0.0.1:{tel.server.port}"], rule_files=[rules],
                           scrape_interval="1s", evaluation_interval="1s") as prometheus:
        prometheus.wait_for_targets_up(1)
        wait_until(lambda: all(rule["health"] == "ok" for group in prometheus.rules("alert")
                               for rule in group["rules"]) and tel.alerting.evaluations > 2,
                   30, what="rules evaluated on both sides")
        worker.start()
        try:
            started = _wait_for_incident(orchestrator, "active", HEALTHY_S + 30)
            # Healthy until then: none of the operations alerts on either side.
            assert set(prometheus_firing(prometheus)) & set(NAMES) == set()
            assert set(in_process_firing(tel)) & set(NAMES) == set()

            fired = watch(tel, prometheus, names, firing=True, since=started,
                          within=FIRE_WITHIN_S)
            assert_agree(fired, names)
            print(f"{kind} fired after (s): {fired}")
            for name, labels in in_process_firing(tel).items():
                assert labels.get("agent"), (name, labels)  # per agent, as documented
            health = json.load(urllib.request.urlopen(f"{tel.url}/health", timeout=5))
            firing = {f["alertname"] for f in health["checks"]["alerts"]["firing"]}
            assert set(names) <= firing and health["status"] == "degraded"

            ended = _wait_for_incident(orchestrator, "over", INCIDENT_S + 30)
            cleared = watch(tel, prometheus, names, firing=False, since=ended,
                            within=CLEAR_WITHIN_S)
            assert_agree(cleared, names)
            print(f"{kind} cleared after (s): {cleared}")
        finally:
            stop.set()
            worker.join(10)


STUCK_ALERTS = [_shortened("WorkflowStuck", threshold=3),
                _shortened("ModeStuckPaused", threshold=3),
                _shortened("StateNotSaved", threshold=3)]


def test_stuck_work_fires_and_clears_on_both_sides(
        start_telemetry: Callable[..., Telemetry], tmp_path: Path) -> None:
    """The alerts no incident stages, from signals sent by hand with 3-second budgets:
    a workflow that does not finish, a pause that does not end, a save that does not
    come while work is in flight."""
    settings = {"server": {"port": 0}, "alerts": STUCK_ALERTS,
                "alerting": {"evaluation_interval_s": EVAL_S}}
    tel = start_telemetry(settings)
    rules = tmp_path / "rules.yml"
    rules.write_text(render("alerts", settings))
    names = [alert["name"] for alert in STUCK_ALERTS]
    with prometheus_server(tmp_path, [f"127.0.0.1:{tel.server.port}"], rule_files=[rules],
                           scrape_interval="1s", evaluation_interval="1s") as prometheus:
        prometheus.wait_for_targets_up(1)
        wait_until(lambda: all(rule["health"] == "ok" for group in prometheus.rules("alert")
                               for rule in group["rules"]) and tel.alerting.evaluations > 2,
                   30, what="rules evaluated on both sides")
        send("state_saved", duration_s=0.01, size_bytes=100)
        send("mode_changed", mode="paused")
        send("workflow_started", workflow_id="wf-stuck")
        started = time.monotonic()
        assert prometheus_firing(prometheus) == {} and in_process_firing(tel) == {}
        fired = watch(tel, prometheus, names, firing=True, since=started,
                      within=FIRE_WITHIN_S)
        assert_agree(fired, names)
        assert all(seconds >= 3 for seconds in fired.values()), fired

        ended = time.monotonic()
        send("workflow_completed", workflow_id="wf-stuck", duration_s=10.0)
        send("mode_changed", mode="active")
        cleared = watch(tel, prometheus, names, firing=False, since=ended,
                        within=CLEAR_WITHIN_S)
        assert_agree(cleared, names)
        print(f"stuck work fired after {fired}, cleared after {cleared}")


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_demo_s_stall_incident_fires_and_clears_in_health_and_prometheus(
        tmp_path: Path) -> None:
    """``yolo-telemetry demo --incident stall`` as documented, faster: at time scale 0.1
    the demo's one-minute idle budget is 6 real seconds, and its stall lasts 12; the
    in-process evaluator runs every second rather than every 15."""
    port, rules = free_port(), tmp_path / "demo-alerts.yml"
    config = tmp_path / "telemetry.yaml"
    config.write_text("alerting:\n  evaluation_interval_s: 1\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "telemetry", "demo", "--incident", "stall", "--time-scale",
         "0.1", "--incident-after", "0", "--incident-for", "120", "--port", str(port),
         "--write-rules", str(rules), "--seed", "4", "--quiet", "--config", str(config)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    health_url = f"http://127.0.0.1:{port}/health"
    try:
        wait_until(lambda: _get(health_url), 30, what="the demo serving /health")
        with prometheus_server(tmp_path, [f"127.0.0.1:{port}"], rule_files=[rules],
                               scrape_interval="1s", evaluation_interval="1s") as prometheus:
            prometheus.wait_for_targets_up(1)
            seen: dict[tuple[str, str], float] = {}
            started = time.monotonic()

            def in_health() -> bool:
                _, document = _get(health_url)
                return "AgentStalled" in {f["alertname"] for f in
                                          document["checks"]["alerts"]["firing"]}

            def both(firing: bool) -> bool:
                now = time.monotonic() - started
                if in_health() == firing:
                    seen.setdefault(("in-process", str(firing)), now)
                if ("AgentStalled" in prometheus_firing(prometheus)) == firing:
                    seen.setdefault(("prometheus", str(firing)), now)
                return (("in-process", str(firing)) in seen
                        and ("prometheus", str(firing)) in seen)

            wait_until(lambda: both(True), 90, what="AgentStalled firing on both sides",
                       interval=0.2, max_interval=0.5)
            status, document = _get(health_url)
            assert status == 200 and document["status"] == "degraded"
            (stalled,) = [f for f in document["checks"]["alerts"]["firing"]
                          if f["alertname"] == "AgentStalled"]
            assert stalled["labels"]["agent"] and stalled["value"] > 6
            wait_until(lambda: both(False), 60, what="AgentStalled clear on both sides",
                       interval=0.2, max_interval=0.5)
            for state in ("True", "False"):
                gap = abs(seen[("prometheus", state)] - seen[("in-process", state)])
                assert gap <= AGREE_WITHIN_S, seen
            print(f"demo stall: {seen}")
    finally:
        demo.terminate()
        assert demo.wait(20) == 0, (tmp_path / "demo.log").read_text()
        log.close()
