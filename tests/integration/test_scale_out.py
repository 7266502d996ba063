"""Many orchestrator processes: Prometheus (file_sd) and an OTLP receiver aggregate them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.backends import prometheus_server, rotel_receiver, wait_until

pytestmark = pytest.mark.backend
PROCESSES = 4


def _environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("YOLO_TELEMETRY__", "YOLO_TELEMETRY_CONFIG", "OTEL_"))}
    env.update(overrides)
    return env


@contextmanager
def demo_processes(
    tmp_path: Path, count: int, *, linger: bool, duration_s: float | None = None, **env: str,
) -> Iterator[list[tuple[subprocess.Popen, Path]]]:
    """``count`` demo processes on their own free ports, each writing a final snapshot."""
    started = []
    try:
        for index in range(count):
            snapshot = tmp_path / f"snapshot-{index}.json"
            command = [sys.executable, "-m", "telemetry", "demo", "--port", "0", "--quiet",
                       "--seed", str(100 + index), "--snapshot-file", str(snapshot)]
            if duration_s is None:  # a fixed amount of work, as fast as possible
                command += ["--workflows", str(2 + index), "--time-scale", "0"]
            else:  # keep emitting, so rates have data
                command += ["--duration", str(duration_s), "--time-scale", "0.002"]
            if linger:
                command.append("--linger")
            process = subprocess.Popen(command, cwd=ROOT, env=_environment(**env),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
            started.append((process, snapshot))
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def _snapshots(started: list[tuple[subprocess.Popen, Path]]) -> list[dict]:
    def all_written() -> list[dict] | None:
        for process, _ in started:
            if process.poll() not in (None, 0):
                raise AssertionError(f"a demo process failed: {process.stderr.read()}")
        if not all(path.exists() for _, path in started):
            return None
        return [json.loads(path.read_text()) for _, path in started]

    return wait_until(all_written, 60, what="every demo process's snapshot")


def test_prometheus_discovers_every_process_through_file_sd(tmp_path: Path) -> None:
    targets_dir = tmp_path / "targets"
    with demo_processes(tmp_path, PROCESSES, linger=True,
                        YOLO_TELEMETRY__DISCOVERY__FILE_SD_DIR=str(targets_dir),
                        YOLO_TELEMETRY__DISCOVERY__LABELS="{role: worker}") as started:
        snapshots = _snapshots(started)
        expected = sum(s["agent"]["handoffs_total"] for s in snapshots)
        ports = {s["url"].rsplit(":", 1)[1] for s in snapshots}
        assert len(ports) == PROCESSES  # each process on its own port
        assert len(list(targets_dir.glob("*.json"))) == PROCESSES

        with prometheus_server(tmp_path, [], file_sd_path=targets_dir / "*.json") as prometheus:
            prometheus.wait_for_targets_up(PROCESSES, timeout=60)
            prometheus.wait_for(f"sum(yolo_handoffs_total) == {expected}", timeout=60)
            per_instance = prometheus.query("sum by (yolo_instance_id) (yolo_handoffs_total)")
            by_id = {r["metric"]["yolo_instance_id"]: float(r["value"][1])
                     for r in per_instance}
            assert by_id == {s["instance_id"]: s["agent"]["handoffs_total"] for s in snapshots}
            roles = prometheus.query('count(up{role="worker"} == 1)')
            assert float(roles[0]["value"][1]) == PROCESSES

            stopped_process, stopped_snapshot = started[0]
            stopped_process.send_signal(signal.SIGTERM)
            stopped_process.wait(30)
            assert len(list(targets_dir.glob("*.json"))) == PROCESSES - 1

            def discovered() -> int | None:
                count = len(prometheus.targets())
                return count if count == PROCESSES - 1 else None

            wait_until(discovered, 60, what="the stopped process to leave discovery")
            gone = json.loads(stopped_snapshot.read_text())["instance_id"]
            assert all(t["labels"].get("yolo_instance_id") != gone
                       for t in prometheus.targets())


def test_otlp_from_every_process_reaches_one_receiver(tmp_path: Path) -> None:
    with rotel_receiver(tmp_path) as rotel:
        env = {"YOLO_TELEMETRY__EXPORTERS__OTLP__ENABLED": "true",
               "YOLO_TELEMETRY__EXPORTERS__OTLP__ENDPOINT": rotel.http_endpoint,
               "YOLO_TELEMETRY__EXPORTERS__OTLP__TRACES": "false",
               "YOLO_TELEMETRY__EXPORTERS__OTLP__INTERVAL_S": "60"}
        with demo_processes(tmp_path, PROCESSES, linger=False, **env) as started:
            snapshots = _snapshots(started)
            for process, _ in started:
                assert process.wait(60) == 0  # each exits after its run, flushing on stop
        expected = {s["instance_id"]: s["agent"]["handoffs_total"] for s in snapshots}
        assert len(expected) == PROCESSES  # distinct service.instance.id per process

        def totals() -> dict[str, float] | None:
            latest: dict[tuple, float] = {}
            for point in rotel.metrics("yolo.handoffs"):
                instance = point["resource"].get("service.instance.id")
                key = (instance, tuple(sorted(point["attributes"].items())))
                latest[key] = point["value"]  # cumulative: the newest point wins
            summed: dict[str, float] = {}
            for (instance, _), value in latest.items():
                summed[instance] = summed.get(instance, 0.0) + value
            return summed if summed == expected else None

        wait_until(totals, 60, what="every process's handoff totals in the receiver")


def test_dashboard_panels_have_data_per_instance_and_in_total(tmp_path: Path) -> None:
    import math

    from telemetry.artefacts.dashboard import queries
    from telemetry.artefacts.render import render

    targets_dir = tmp_path / "targets"
    env = {"YOLO_TELEMETRY__DISCOVERY__FILE_SD_DIR": str(targets_dir)}
    with (demo_processes(tmp_path, PROCESSES, linger=False, duration_s=120, **env),
          prometheus_server(tmp_path, [], file_sd_path=targets_dir / "*.json") as prometheus):
            targets = prometheus.wait_for_targets_up(PROCESSES, timeout=60)
            instances = sorted(t["labels"]["instance"] for t in targets)
            assert len(set(instances)) == PROCESSES
            document = json.loads(render("dashboard", None))
            # Panels with a "no value" text (telemetry problems, firing alerts) show it when
            # their series are absent, which is their normal state: their queries must
            # still be valid PromQL. Every other panel must have data.
            must_have_data, may_be_empty = [], []
            for panel in document["panels"]:
                exprs = [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
                no_value = panel.get("fieldConfig", {}).get("defaults", {}).get("noValue")
                (may_be_empty if no_value else must_have_data).extend(exprs)
            assert len(must_have_data) >= 30
            assert set(must_have_data) | set(may_be_empty) == set(queries(document))

            def concrete(expr: str, instance: str) -> str:
                return (expr.replace("$__rate_interval", "20s").replace("$job", "yolo")
                        .replace("$instance", instance))

            for instance in [".*", *instances]:
                for expr in may_be_empty:
                    prometheus.query(concrete(expr, instance))  # raises on invalid PromQL
                for expr in must_have_data:
                    promql = concrete(expr, instance)
                    wait_until(lambda promql=promql: [
                        r for r in prometheus.query(promql)
                        if not math.isnan(float(r["value"][1]))],
                        30, what=f"data for {promql}")


def test_shipped_deployment_configs_are_valid(tmp_path: Path) -> None:
    import shutil

    import yaml

    from tests.support.backends import require_backend

    promtool = shutil.which("promtool")
    require_backend("promtool", promtool is not None, "Debian package prometheus")
    result = subprocess.run([promtool, "check", "config", "prometheus-file-sd.yml"],
                            cwd=ROOT / "config" / "prometheus", capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    collector = yaml.safe_load((ROOT / "config" / "otel-collector" / "collector.yaml").read_text())
    pipelines = collector["service"]["pipelines"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    assert collector["exporters"]["prometheus"]["resource_to_telemetry_conversion"]["enabled"]
    for pipeline in pipelines.values():
        for part in ("receivers", "processors", "exporters"):
            assert set(pipeline[part]) <= set(collector[part])
