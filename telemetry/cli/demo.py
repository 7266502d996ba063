"""``yolo-telemetry demo``: the reference orchestrator with telemetry on.

By default it tells the story of a healthy orchestrator in real time
(``--time-scale 1``), so ``/health`` stays 200 and the built-in alerts stay quiet;
``--incident KIND`` stages one incident (:mod:`telemetry.cli.incidents`) to watch an
alert fire and clear.

SIGTERM and SIGINT stop it cleanly: the handlers only set an event, and the main
thread then stops the orchestrator and telemetry (final exports, the file_sd
target removed) and exits with status 0. Doing the work in the main thread, not
in the handler, keeps the handler from waiting on a lock the interrupted code
holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from telemetry import config as config_module
from telemetry.alerting.builtins import effective_alerts
from telemetry.alerting.rules import render_rules
from telemetry.cli.incidents import DEMO_AGE_BUDGETS_S, Incident, with_demo_alerts
from telemetry.cli.simulator import ReferenceOrchestrator, SimulationStats
from telemetry.config import TelemetryConfig
from telemetry.runtime import Telemetry, package_version


def demo_config(args: argparse.Namespace) -> TelemetryConfig:
    """The config the demo runs with: the file, ``--port``, and with ``--incident``
    the alerts in force with demo timings."""
    loaded = config_module.load(args.config)
    if args.port is not None:
        loaded.server.port = args.port
        loaded.server.port_range = None
    if args.incident is not None:
        loaded = with_demo_alerts(loaded, args.time_scale)
    return loaded


def run_demo(args: argparse.Namespace) -> int:
    stop = threading.Event()  # set by SIGTERM and SIGINT
    with _stop_on_signals(stop):
        loaded = demo_config(args)
        if args.write_rules:
            _write_rules(loaded, args.write_rules)
        incident = (Incident(args.incident, args.incident_after, args.incident_for)
                    if args.incident else None)
        tel = Telemetry(loaded).start()
        halt = threading.Event()  # stops the orchestrator: a signal or --duration
        orchestrator = ReferenceOrchestrator(seed=args.seed, time_scale=args.time_scale,
                                             stop_event=halt, incident=incident)
        _print_banner(tel, args, incident)
        progress = _Progress(tel, quiet=args.quiet)
        worker = threading.Thread(
            target=orchestrator.run, name="reference-orchestrator",
            kwargs={"workflows": args.workflows}, daemon=True)
        worker.start()
        # --duration is real time and may end a workflow midway (it fails as
        # "Cancelled"): at time scale 1 one workflow takes about a minute.
        deadline = time.monotonic() + args.duration if args.duration else None
        try:
            while worker.is_alive() and not stop.wait(_until(deadline, 1.0)):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                progress.show(orchestrator.stats)
            halt.set()
            worker.join()
            if args.snapshot_file:
                _write_snapshot(tel, args.snapshot_file)
            if args.linger and not stop.is_set():
                print("  orchestrator finished; still serving until Ctrl-C or SIGTERM",
                      flush=True)
                stop.wait()
        finally:
            halt.set()
            worker.join(10)
            tel.stop()
            progress.show(orchestrator.stats, final=True)
    return 0


def _until(deadline: float | None, longest: float) -> float:
    """Seconds to wait: ``longest``, or less if ``deadline`` comes sooner."""
    if deadline is None:
        return longest
    return max(min(longest, deadline - time.monotonic()), 0.0)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (and nothing else) while the demo runs.

    Installed before telemetry starts, so a signal arriving during start-up is not
    lost to the default action (which would leave the file_sd target behind).
    """
    previous = {signum: signal.signal(signum, lambda *_: stop.set())
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _write_rules(config: TelemetryConfig, path: str) -> None:
    """The Prometheus rules of the alerts this run evaluates, so both agree."""
    alerts = effective_alerts(config.alerts, config.alerting)
    target = Path(path)
    try:
        target.write_text(render_rules(alerts, config.alerting.group_labels), encoding="utf-8")
    except OSError as error:
        raise config_module.ConfigError(f"--write-rules {path}: cannot write: "
                                        f"{error.strerror or error}") from None


def _write_snapshot(tel: Telemetry, path: str) -> None:
    """The final AgentMetrics and SystemMetrics as JSON, written atomically."""
    agent, system = tel.snapshot()
    document = {"instance_id": tel.instance_id, "url": tel.url,
                "agent": _jsonable(dataclasses.asdict(agent)),
                "system": dataclasses.asdict(system)}
    temporary = f"{path}.tmp"
    with open(temporary, "w") as file:
        json.dump(document, file, indent=2)
    os.replace(temporary, path)


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {("/".join(k) if isinstance(k, tuple) else k): _jsonable(v)
                for k, v in value.items()}
    return value


def _print_banner(tel: Telemetry, args: argparse.Namespace, incident: Incident | None) -> None:
    print(f"yolo-telemetry {package_version()} demo (config: {tel.config.source})")
    if tel.url:
        print(f"  metrics: {tel.url}/metrics")
        print(f"  health:  {tel.url}/health")
        if tel.profiling is not None:
            print(f"  profile: yolo-telemetry profile {tel.url} --seconds 10")
    print(f"  exporters: {', '.join(tel.exporters) or 'none'}")
    if args.workflows:
        until = f"for {args.workflows} workflows"
    else:
        until = f"for {args.duration:g}s" if args.duration else "until Ctrl-C"
    pace = ("in real time" if args.time_scale == 1 else "as fast as it can"
            if args.time_scale == 0 else f"at {1 / args.time_scale:g}x real time "
            f"(rates per second {1 / args.time_scale:g}x a real run's)")
    print(f"  running the reference orchestrator {pace} {until}")
    if incident is not None:
        names = [alert.name for alert in effective_alerts(tel.config.alerts,
                                                          tel.config.alerting)]
        print(f"  incident '{incident.kind}' for {incident.duration_s:g}s, from "
              f"{incident.start_s:g}s in or once a workflow has completed (simulated "
              f"time): watch {' and '.join(incident.alerts)} fire and clear")
        for alert in incident.alerts:
            if alert not in names:
                print(f"  note: {alert} is not among the alerts in force", flush=True)
        print("  alerts use demo timings (windows <= 1m, for <= 30s, AgentStalled after "
              f"{DEMO_AGE_BUDGETS_S['AgentStalled'] * (args.time_scale or 1):g}s silent); "
              "--write-rules FILE writes the matching Prometheus rules")
    sys.stdout.flush()


class _Progress:
    """One status line a second: rewritten in place on a terminal, appended otherwise."""

    def __init__(self, tel: Telemetry, quiet: bool) -> None:
        self.tel = tel
        self.quiet = quiet
        self.started = time.monotonic()
        self.tty = sys.stdout.isatty()
        self.last_line = 0.0

    def show(self, stats: SimulationStats, final: bool = False) -> None:
        if self.quiet and not final:
            return
        elapsed = time.monotonic() - self.started
        if not (self.tty or final) and elapsed - self.last_line < 5.0:
            return
        self.last_line = elapsed
        agent, system = self.tel.snapshot()
        if final:
            status = "(telemetry stopped)"
        else:
            health = self.tel.health()
            firing = [f["alertname"] for f in health["checks"].get("alerts", {})
                      .get("firing", [])]
            status = health["status"] + (f" (firing: {', '.join(firing)})" if firing else "")
        incident = f"  incident {stats.incident}" if stats.incident else ""
        line = (f"[{elapsed:6.1f}s] workflows {system.workflows_completed} ok / "
                f"{system.workflows_failed} failed  handoffs {agent.handoffs_total}  "
                f"decisions {agent.decisions_made}  errors {agent.errors_total}  "
                f"blocks {agent.safety_blocks}  agent {stats.current_agent or '-'}  "
                f"mode {system.mode}{incident}  health {status}")
        end = "\n" if final or not self.tty else ""
        print(("\r\033[K" if self.tty else "") + line, end=end, flush=True)
