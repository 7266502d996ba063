"""``yolo-telemetry``: run the demo, check a config file, render rules and dashboard,
fetch a profile.

User errors (bad config, port in use) print one clear message and exit with status
2, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

from telemetry import config as config_module
from telemetry.artefacts import render
from telemetry.cli.simulator import ReferenceOrchestrator, SimulationStats
from telemetry.config import ConfigError
from telemetry.profiling.client import add_profile_command
from telemetry.runtime import Telemetry, package_version

EXIT_USAGE = 2


def _check_config(args: argparse.Namespace) -> int:
    loaded = config_module.load(args.file)
    enabled = [name for name, section in loaded.exporters if section.enabled]
    print(f"{args.file}: OK (exporters: {', '.join(enabled) or 'none'}; "
          f"server {loaded.server.host}:{loaded.server.port})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    loaded = config_module.load(args.config)
    if args.port is not None:
        loaded.server.port = args.port
    tel = Telemetry(loaded).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    orchestrator = ReferenceOrchestrator(seed=args.seed, time_scale=args.time_scale,
                                         stop_event=stop)
    _print_banner(tel, args)
    progress = _Progress(tel, quiet=args.quiet)
    worker = threading.Thread(
        target=orchestrator.run, name="reference-orchestrator",
        kwargs={"duration_s": args.duration, "workflows": args.workflows}, daemon=True)
    worker.start()
    try:
        while worker.is_alive() and not stop.wait(1.0):
            progress.show(orchestrator.stats)
        worker.join()
        if args.snapshot_file:
            _write_snapshot(tel, args.snapshot_file)
        if args.linger and not stop.is_set():
            print("  orchestrator finished; still serving until Ctrl-C", flush=True)
            stop.wait()
    finally:
        stop.set()
        worker.join(10)
        tel.stop()
        progress.show(orchestrator.stats, final=True)
    return 0


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


def _print_banner(tel: Telemetry, args: argparse.Namespace) -> None:
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
    print(f"  running the reference orchestrator {until}", flush=True)


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
        status = self.tel.health()["status"] if not final else "(telemetry stopped)"
        line = (f"[{elapsed:6.1f}s] workflows {system.workflows_completed} ok / "
                f"{system.workflows_failed} failed  handoffs {agent.handoffs_total}  "
                f"decisions {agent.decisions_made}  errors {agent.errors_total}  "
                f"blocks {agent.safety_blocks}  agent {stats.current_agent or '-'}  "
                f"mode {system.mode}  health {status}")
        end = "\n" if final or not self.tty else ""
        print(("\r\033[K" if self.tty else "") + line, end=end, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yolo-telemetry",
        description="Telemetry and monitoring for the YOLO multi-agent orchestrator.")
    parser.add_argument("--version", action="version", version=package_version())
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the reference orchestrator with telemetry on")
    demo.add_argument("--config", "-c", default=None,
                      help="config file (default: $YOLO_TELEMETRY_CONFIG or the embedded one)")
    demo.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    demo.add_argument("--workflows", type=int, default=None, help="stop after N workflows")
    demo.add_argument("--seed", type=int, default=None, help="seed of the simulation")
    demo.add_argument("--time-scale", type=float, default=0.05,
                      help="real seconds per simulated second (0: as fast as possible)")
    demo.add_argument("--port", type=int, default=None, help="override server.port")
    demo.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    demo.add_argument("--linger", action="store_true",
                      help="keep serving /metrics after the orchestrator finishes")
    demo.add_argument("--snapshot-file", default=None,
                      help="write the final snapshot as JSON to this file")
    demo.set_defaults(run=_demo)

    check = commands.add_parser("check-config", help="validate a config file (exit 2 if bad)")
    check.add_argument("file")
    check.set_defaults(run=_check_config)
    add_profile_command(commands)
    render.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return run(args)
    except ConfigError as error:
        print(f"yolo-telemetry: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
