"""``yolo-telemetry watch-bmad DIR``: telemetry for a BMAD project, from its files.

Starts telemetry (server and exporters as the config says), then polls the project's
``sprint-status.yaml`` and memlogs every ``--interval`` seconds on the main thread and
sends the signals :mod:`telemetry.bmad` maps them to. SIGINT (Ctrl-C) and SIGTERM only
set an event; the main thread then stops telemetry (final exports) and exits with
status 0. ``--once`` polls once, prints what it found and stops: status 0, or 1 when no
sprint status could be read. A missing ``DIR`` or a bad ``--roles`` file is a usage
error (status 2).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from telemetry import config as config_module
from telemetry.bmad import BmadWatcher, load_roles
from telemetry.config import ConfigError
from telemetry.runtime import Telemetry, package_version

DEFAULT_INTERVAL_S = 2.0


def add_watch_bmad_command(commands: Any, seconds: Callable[[str], float],
                           port: Callable[[str], int]) -> None:
    """The ``watch-bmad`` subcommand, with the parser's own option value checks."""
    watch = commands.add_parser(
        "watch-bmad", help="follow a BMAD project's sprint-status.yaml and memlogs, "
                           "with telemetry on")
    watch.add_argument("dir", metavar="DIR",
                       help="the BMAD project (or its sprint-status.yaml)")
    watch.add_argument("--config", "-c", default=None,
                       help="config file (default: $YOLO_TELEMETRY_CONFIG or the embedded one)")
    watch.add_argument("--interval", type=seconds, default=DEFAULT_INTERVAL_S,
                       metavar="SECONDS",
                       help=f"seconds between two polls (default {DEFAULT_INTERVAL_S:g})")
    watch.add_argument("--once", action="store_true",
                       help="poll once, print what was found, stop")
    watch.add_argument("--roles", default=None, metavar="FILE",
                       help="YAML file overriding which role owns each story state "
                            "(see docs/adapters/bmad.md)")
    watch.add_argument("--port", type=port, default=None,
                       help="override server.port (0: any free port)")
    watch.set_defaults(run=run_watch_bmad)


def run_watch_bmad(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.exists():
        raise ConfigError(f"{args.dir}: no such directory or file")
    roles = load_roles(args.roles)
    stop = threading.Event()
    with _stop_on_signals(stop):
        loaded = config_module.load(args.config)
        if args.port is not None:
            loaded.server.port = args.port
            loaded.server.port_range = None
        tel = Telemetry(loaded).start()
        try:
            watcher = BmadWatcher(root, roles, count_dropped=tel.aggregator.count_dropped)
            tel.add_health_check("bmad", watcher.health)
            _print_banner(tel, args)
            if args.once:
                watcher.poll()
                return _summary(watcher)
            watcher.run(stop, args.interval)
        finally:
            tel.stop()
    return 0


def _summary(watcher: BmadWatcher) -> int:
    known = watcher.mapper.state.known
    path = watcher.sprint_status_path
    if path is None or not watcher.mapper.started:
        print(f"  no readable sprint status (unreadable {watcher.counts.unreadable}, "
              f"missing {watcher.counts.file_missing})")
        return 1
    print(f"  {path}: {len(known.epics)} epics, {len(known.stories)} stories "
          f"({len(watcher.mapper.state.in_flight)} epics in flight), "
          f"{watcher.counts.unknown_state} unknown states")
    return 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` and nothing else, from before telemetry starts."""
    previous = {signum: signal.signal(signum, lambda *_: stop.set())
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _print_banner(tel: Telemetry, args: argparse.Namespace) -> None:
    print(f"yolo-telemetry {package_version()} watch-bmad {args.dir} "
          f"(config: {tel.config.source})")
    if tel.url:
        print(f"  metrics: {tel.url}/metrics")
        print(f"  health:  {tel.url}/health")
    print(f"  exporters: {', '.join(tel.exporters) or 'none'}")
    until = "once" if args.once else f"every {args.interval:g}s until Ctrl-C or SIGTERM"
    print(f"  polling {until}")
    sys.stdout.flush()
