"""Shutdown flushes every exporter, whichever way the process ends, and is bounded.

``stop()``, the ``atexit`` hook of a program that never calls it, and SIGTERM to the
demo each end with rotel and the StatsD daemon holding everything that was sent. The
exporters' own intervals are an hour in these tests, so what arrives was sent by the
shutdown flush. With the backends dead or hung, ``stop()`` still returns within its
timeout plus a little, and a second call returns at once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from telemetry import catalogue as cat
from telemetry.cli.simulator import ReferenceOrchestrator
from tests.faults.test_otlp import latest_points, wait_for_the_totals
from tests.integration.test_statsd_daemon import expected
from tests.support import ROOT
from tests.support.backends import (
    RotelReceiver,
    StatsdDaemon,
    rotel_receiver,
    statsd_daemon,
    wait_until,
)
from tests.support.faults import TimedOrchestrator, expected_spans, get_json, record

pytestmark = pytest.mark.backend



def exporters_config(rotel: RotelReceiver, daemon: StatsdDaemon) -> dict[str, Any]:
    return {"exporters": {
        "otlp": {"enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600},
        "statsd": {"enabled": True, "port": daemon.port, "flush_interval_s": 3600}}}


def statsd_total(daemon: StatsdDaemon, spec: cat.MetricSpec) -> float:
    """Sum of a counter over all its label sets, as the daemon holds it."""
    counters = daemon.counters()
    stem = spec.statsd_name("yolo")
    if not spec.labels:
        return counters.get(stem, 0.0)
    prefix = f"{stem}.{spec.labels[0]}."  # etsy names spell label names and values
    return sum(v for k, v in counters.items() if k.startswith(prefix))


def rotel_total(rotel: RotelReceiver, instance_id: str, name: str) -> float:
    return sum(point["value"] for (metric, _), point in latest_points(rotel, instance_id).items()
               if metric == name)


def test_stop_flushes_every_exporter(tmp_path: Path, start_telemetry) -> None:
    with rotel_receiver(tmp_path) as rotel, statsd_daemon(tmp_path) as daemon:
        tel = start_telemetry(exporters_config(rotel, daemon))
        orchestrator = ReferenceOrchestrator(seed=51, error_probability=0.2)
        orchestrator.run(workflows=8)
        assert daemon.counters() == {}  # nothing sent before stop
        tel.stop()

        counters, gauges, _ = expected(tel)
        # a counter never incremented (a signal the run never sent) is not sent: 0
        daemon.wait_for(lambda d: all(d.counters().get(k, 0.0) == v
                                      for k, v in counters.items()))
        held_gauges = daemon.gauges()
        for name, value in gauges.items():
            assert held_gauges.get(name) == value, name
        spans = rotel.wait_for_spans(count=expected_spans(orchestrator.stats))
        compared = wait_for_the_totals(rotel, tel)
        dropped = tel.aggregator.value(cat.DROPPED, ("tracer", "shutdown_timeout"))
    assert len(spans) == expected_spans(orchestrator.stats)
    assert dropped == 0
    record("stop() flush", events=orchestrator.stats.events, spans=len(spans),
           otlp_series_equal=compared, statsd_counters_equal=len(counters))


def _python_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "YOLO_TELEMETRY"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


ATEXIT_PROGRAM = textwrap.dedent("""
    import json, sys
    import telemetry
    from telemetry.cli.simulator import ReferenceOrchestrator

    config = json.loads(sys.argv[1])
    tel = telemetry.start(config)
    orchestrator = ReferenceOrchestrator(seed=52)
    orchestrator.run(workflows=6)
    agent, system = tel.snapshot()
    print(json.dumps({"instance_id": tel.instance_id, "handoffs": agent.handoffs_total,
                      "events": system.events_total, "started": system.workflows_started,
                      "spans": sum(orchestrator.stats.counts_by_signal.get(name, 0) for name in
                                   %r)}))
    # no tel.stop(): the atexit hook must flush
""")


def test_atexit_flushes_a_program_that_never_calls_stop(tmp_path: Path) -> None:
    from tests.support.faults import SPAN_SIGNALS

    with rotel_receiver(tmp_path) as rotel, statsd_daemon(tmp_path) as daemon:
        config = {"server": {"port": 0}, **exporters_config(rotel, daemon)}
        done = subprocess.run(
            [sys.executable, "-c", ATEXIT_PROGRAM % (SPAN_SIGNALS,), json.dumps(config)],
            capture_output=True, text=True, timeout=120, env=_python_env(), check=False)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        sent = json.loads(done.stdout.strip().splitlines()[-1])
        spans = rotel.wait_for_spans(count=sent["spans"])
        wait_until(lambda: rotel_total(rotel, sent["instance_id"], "yolo.handoffs")
                   == sent["handoffs"], what="the handoffs in rotel")
        assert rotel_total(rotel, sent["instance_id"], "yolo.telemetry.events") == sent["events"]
        daemon.wait_for(lambda d: statsd_total(d, cat.HANDOFFS) == sent["handoffs"])
        assert statsd_total(daemon, cat.WORKFLOWS_STARTED) == sent["started"]
        assert statsd_total(daemon, cat.EVENTS) == sent["events"]
    assert len(spans) == sent["spans"]
    record("atexit flush", events=sent["events"], handoffs=sent["handoffs"], spans=len(spans))


def test_sigterm_to_the_demo_flushes_both_exporters(tmp_path: Path) -> None:
    snapshot_file = tmp_path / "snapshot.json"
    with rotel_receiver(tmp_path) as rotel, statsd_daemon(tmp_path) as daemon:
        env = _python_env(
            YOLO_TELEMETRY__EXPORTERS__OTLP__ENABLED="true",
            YOLO_TELEMETRY__EXPORTERS__OTLP__ENDPOINT=rotel.http_endpoint,
            YOLO_TELEMETRY__EXPORTERS__OTLP__INTERVAL_S="3600",
            YOLO_TELEMETRY__EXPORTERS__STATSD__ENABLED="true",
            YOLO_TELEMETRY__EXPORTERS__STATSD__PORT=str(daemon.port),
            YOLO_TELEMETRY__EXPORTERS__STATSD__FLUSH_INTERVAL_S="3600")
        demo = subprocess.Popen(
            [sys.executable, "-m", "telemetry", "demo", "--snapshot-file", str(snapshot_file),
             "--port", "0", "--time-scale", "0.0005", "--seed", "53"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = None
            assert demo.stdout is not None
            for line in demo.stdout:
                if match := re.search(r"health: +(http://\S+)/health", line):
                    url = match.group(1)
                    break
            assert url, "the demo did not print its /health address"
            wait_until(lambda: get_json(f"{url}/health")[1]["events_total"] > 500,
                       what="the demo to send some events")
            demo.send_signal(signal.SIGTERM)
            _, err = demo.communicate(timeout=60)
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait(10)
        assert demo.returncode == 0, err
        assert "Traceback" not in err, err
        snapshot = json.loads(snapshot_file.read_text())
        instance, agent, system = snapshot["instance_id"], snapshot["agent"], snapshot["system"]
        wait_until(lambda: rotel_total(rotel, instance, "yolo.handoffs") == agent["handoffs_total"],
                   what="the demo's handoffs in rotel")
        assert rotel_total(rotel, instance, "yolo.telemetry.events") == system["events_total"]
        assert rotel_total(rotel, instance, "yolo.workflows") == (
            system["workflows_completed"] + system["workflows_failed"])
        daemon.wait_for(lambda d: statsd_total(d, cat.HANDOFFS) == agent["handoffs_total"])
        assert statsd_total(daemon, cat.DECISIONS) == agent["decisions_made"]
        assert statsd_total(daemon, cat.EVENTS) == system["events_total"]
        assert statsd_total(daemon, cat.WORKFLOWS_STARTED) == system["workflows_started"]
    record("SIGTERM to the demo", events=system["events_total"],
           handoffs=agent["handoffs_total"], workflows=system["workflows_started"])


@pytest.mark.parametrize("fault", ["dead", "hung"])
def test_stop_is_bounded_and_idempotent_with_the_backends_down(
        tmp_path: Path, start_telemetry, fault: str) -> None:
    """Default timeouts (OTLP 10 s, StatsD 2 s; stop's budget 10 s): a dead collector
    refuses at once, a hung one (SIGSTOP: connections accepted, never answered) makes
    every export wait for its timeout. Either way stop() keeps to its budget."""
    with rotel_receiver(tmp_path) as rotel, statsd_daemon(tmp_path) as daemon:
        tel = start_telemetry(exporters_config(rotel, daemon))
        daemon.stop()
        pid = rotel._process.pid if rotel._process is not None else None
        if fault == "dead":
            rotel.kill()
        else:
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
        try:
            orchestrator = TimedOrchestrator(seed=54, events_per_s=5000)
            with orchestrator.running():  # signals keep coming while we stop
                orchestrator.phase = "stopping"
                wait_until(lambda: orchestrator.stats.events > 2000, what="events")
                started = time.monotonic()
                tel.stop()
                first = time.monotonic() - started
                started = time.monotonic()
                tel.stop()
                second = time.monotonic() - started
        finally:
            if fault == "hung" and pid is not None:
                os.kill(pid, signal.SIGCONT)
    assert tel.state == "stopped"
    assert first < 10.0 + 2.0, first
    assert second < 0.05, second
    orchestrator.latency("stopping").assert_bounded()
    dropped = {(component, reason): tel.aggregator.value(cat.DROPPED, (component, reason))
               for component, reason in (("statsd", "send_failed"), ("tracer", "export_failed"),
                                         ("tracer", "shutdown_timeout"))}
    assert dropped[("statsd", "send_failed")] > 0
    assert dropped[("tracer", "export_failed")] + dropped[("tracer", "shutdown_timeout")] > 0
    record(f"stop with backends {fault}", stop_s=round(first, 3),
           second_stop_s=round(second, 4), events=orchestrator.stats.events,
           dropped={f"{c}/{r}": int(v) for (c, r), v in dropped.items()},
           exporter_errors={name: int(tel.aggregator.value(cat.EXPORTER_ERRORS, (name,)))
                            for name in ("otlp", "statsd")})


def test_final_flush_when_threads_cannot_start(tmp_path: Path, start_telemetry,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.12.0 and 3.12.1 refuse to start threads in atexit hooks; the OTLP
    exporter's stop then runs its flush tasks inline instead of losing them."""
    import threading

    with rotel_receiver(tmp_path) as rotel:
        tel = start_telemetry({"exporters": {"otlp": {
            "enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600}}})
        orchestrator = ReferenceOrchestrator(seed=55)
        orchestrator.run(workflows=2)
        start = threading.Thread.start

        def refuse(thread: threading.Thread) -> None:
            if thread.name == "otlp-flush":
                raise RuntimeError("can't create new thread at interpreter shutdown")
            start(thread)

        monkeypatch.setattr(threading.Thread, "start", refuse)
        tel.stop()
        monkeypatch.undo()
        spans = rotel.wait_for_spans(count=expected_spans(orchestrator.stats))
        assert wait_for_the_totals(rotel, tel) > 20
    assert len(spans) == expected_spans(orchestrator.stats)
