"""``yolo-telemetry top --prometheus``: a fleet read through a real Prometheus.

Two telemetry instances (both receiving the reference orchestrator's signals) and a
target that is down are scraped by Prometheus every second; top reads them through
PromQL, with a row per instance and agent, the down target shown as lost, and
rates in the very first frame (the source starts from a reading one minute back).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from telemetry import Telemetry
from telemetry.cli.main import main
from telemetry.cli.simulator import ReferenceOrchestrator
from telemetry.top.frame import build_frame
from telemetry.top.promql import PrometheusSource
from telemetry.top.readings import History
from tests.support.backends import free_port, prometheus_server, wait_until

pytestmark = pytest.mark.backend


def test_a_fleet_through_prometheus(start_telemetry: Callable[..., Telemetry],
                                    tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    first, second = start_telemetry(), start_telemetry()
    down = f"127.0.0.1:{free_port()}"
    targets = [f"127.0.0.1:{tel.server.port}" for tel in (first, second)]
    stop = threading.Event()
    orchestrator = ReferenceOrchestrator(seed=5, time_scale=0.02, stop_event=stop)
    worker = threading.Thread(target=orchestrator.run, name="reference-orchestrator",
                              daemon=True)
    with prometheus_server(tmp_path, [*targets, down], scrape_interval="1s") as prometheus:
        worker.start()
        try:
            wait_until(lambda: sum(t.get("health") == "up" for t in prometheus.targets()) == 2,
                       30, what="the two instances up (the third stays down)")
            source = PrometheusSource(prometheus.url, timeout_s=5, lookback_s=3)

            def two_instances_with_agents() -> bool:
                readings = source.read()
                return sum(1 for r in readings if r.ok and r.by(
                    "yolo_decisions_total", "agent")) == 2
            wait_until(two_instances_with_agents, 30, what="both instances in Prometheus",
                       interval=0.5)
            wait_until(lambda: {series["metric"].get("instance") for series in
                                prometheus.query("yolo_decisions_total offset 3s")}
                       >= set(targets), 30,
                       what="three seconds of history of both instances", interval=0.5)

            past = source.history()  # three seconds back: the first frame has rates
            assert {r.instance for r in past} == set(targets)
            history = History()
            history.add_all([*past, *source.read()])
            first = build_frame(history, time.time(), source.describe())
            assert first.header.events_per_s and first.header.events_per_s > 0
            assert any(row.decisions_per_s is not None for row in first.agents)

            assert main(["top", "--prometheus", prometheus.url, "--json"]) == 1  # one down
            frame = json.loads(capsys.readouterr().out)
            statuses = {i["name"]: i["status"] for i in frame["header"]["instances"]}
            assert statuses[down] == "lost" and "up == 0" in str(frame["header"]["reasons"])
            assert all(statuses[t] == "healthy" for t in targets), statuses
            instances = {row["instance"] for row in frame["agents"]}
            assert instances == set(targets)
            assert frame["header"]["events_per_s"] is not None
            assert frame["header"]["mode"] in ("active", "paused", "degraded")
            assert frame["header"]["source"] == f"Prometheus {prometheus.url}"

            assert main(["top", "--prometheus", prometheus.url, "--json",
                         "--instance", targets[0]]) == 0
            picked = json.loads(capsys.readouterr().out)
            assert {row["instance"] for row in picked["agents"]} == {""}
            assert [i["name"] for i in picked["header"]["instances"]] == [targets[0]]
        finally:
            stop.set()
            worker.join(10)
