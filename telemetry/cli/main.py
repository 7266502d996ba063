"""``yolo-telemetry``: run the demo, check a config file, render rules and dashboard,
fetch a profile, watch running instances (``top``), follow a BMAD project (``watch-bmad``).

User errors (bad config, port in use, a bad option value, no command) print one
clear message on stderr and exit with status 2, without a traceback. Option values
are checked when parsed (a port in range, finite positive durations), so a
mistake is a usage error rather than a traceback or a run that never ends.
``check-config`` also checks that the packages of every enabled exporter import,
so a config it passes does not fail at start for want of an extra.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from telemetry import compiled
from telemetry import config as config_module
from telemetry.artefacts import render
from telemetry.cli.demo import run_demo
from telemetry.cli.incidents import KINDS
from telemetry.cli.watch_bmad import add_watch_bmad_command
from telemetry.config import ConfigError, ServerConfig, TelemetryConfig
from telemetry.profiling.client import add_profile_command
from telemetry.runtime import package_version
from telemetry.top.command import add_top_command

EXIT_USAGE = 2


def _check_config(args: argparse.Namespace) -> int:
    loaded = config_module.load(args.file)
    problems = missing_exporter_packages(loaded)
    if problems:
        raise ConfigError("\n".join(problems))
    enabled = [name for name, section in loaded.exporters if section.enabled]
    print(f"{args.file}: OK (exporters: {', '.join(enabled) or 'none'}; "
          f"{_server_summary(loaded.server)})")
    return 0


def _server_summary(server: ServerConfig) -> str:
    if not server.enabled:
        return "server off"
    if server.port_range is not None:
        first, last = server.port_range
        return f"server {server.host}, first free port of {first}-{last}"
    if server.port == 0:
        return f"server {server.host}, any free port"
    return f"server {server.host}:{server.port}"


def _otlp_modules(section: Any, config: TelemetryConfig) -> list[str]:
    """The modules the OTLP exporter imports when it starts with this config."""
    wire = "grpc" if section.protocol == "grpc" else "http"
    modules = []
    if section.metrics:
        modules += ["exporters.otlp.metrics", f"exporters.otlp.fastpath.metric_{wire}"]
    if section.traces and config.tracing.enabled:
        modules += ["exporters.otlp.batch", "exporters.otlp.traces",
                    f"exporters.otlp.fastpath.span_{wire}", "telemetry.tracing.tracer"]
    return modules


#: What an enabled exporter needs importable beyond the base install, by exporter.
EXPORTER_MODULES: dict[str, Callable[[Any, TelemetryConfig], list[str]]] = {
    "otlp": _otlp_modules,
}


def missing_exporter_packages(config: TelemetryConfig) -> list[str]:
    """One message per enabled exporter whose optional packages do not import.

    Without this, check-config would pass a config the demo then refuses at start.
    """
    problems = []
    for name, section in config.exporters:
        needed = EXPORTER_MODULES.get(name)
        if not section.enabled or needed is None:
            continue
        for module in needed(section, config):
            try:
                importlib.import_module(module)
            except ImportError as error:
                if (error.name or "").startswith(("exporters", "telemetry")):
                    raise  # our own module moved: a bug here, not a missing extra
                problems.append(f"{config.source}: exporters.{name}.enabled: needs packages "
                                f"that are not installed ({error.name or module}); "
                                f"pip install 'yolo-telemetry[{name}]'")
                break
    return problems


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number; found {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port from 0 to 65535 (0: any free port); found {value}")
    return value


def _number(text: str, *, allow_zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; found {text!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        least = "0 or more" if allow_zero else "more than 0"
        raise argparse.ArgumentTypeError(f"expected a finite number, {least}; found {text!r}")
    return value


def _seconds(text: str) -> float:
    return _number(text, allow_zero=False)


def _scale(text: str) -> float:
    return _number(text, allow_zero=True)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number; found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more; found {value}")
    return value


class _Version(argparse.Action):
    """``--version``: the version and the build (compiled or pure Python), looked up
    only when asked, so other commands do not pay for finding the modules."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"{package_version()} ({compiled.summary()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yolo-telemetry",
        description="Telemetry and monitoring for the YOLO multi-agent orchestrator.")
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="show the version, and whether the per-event path runs compiled")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the reference orchestrator with telemetry on")
    demo.add_argument("--config", "-c", default=None,
                      help="config file (default: $YOLO_TELEMETRY_CONFIG or the embedded one)")
    demo.add_argument("--duration", type=_seconds, default=None,
                      help="stop after SECONDS (real time)")
    demo.add_argument("--workflows", type=_count, default=None, help="stop after N workflows")
    demo.add_argument("--seed", type=int, default=None, help="seed of the simulation")
    demo.add_argument("--time-scale", type=_scale, default=1.0,
                      help="real seconds per simulated second (default 1: real time; "
                           "0: as fast as possible; below 1 multiplies every rate)")
    demo.add_argument("--incident", choices=KINDS, default=None,
                      help="stage an incident: errors (HighErrorRate), context "
                           "(ContextOverflow), slow-handoffs (HandoffLatencyHigh), stall "
                           "(AgentStalled), loop (HandoffLoop, ToolCallRepeating) or "
                           "tokens (TokenBudgetBurn)")
    demo.add_argument("--incident-after", type=_scale, default=30.0, metavar="SECONDS",
                      help="simulated seconds before the incident starts (default 30)")
    demo.add_argument("--incident-for", type=_seconds, default=120.0, metavar="SECONDS",
                      help="simulated seconds the incident lasts (default 120)")
    demo.add_argument("--write-rules", default=None, metavar="FILE",
                      help="write the Prometheus rules of the alerts this run evaluates")
    demo.add_argument("--port", type=_port, default=None,
                      help="override server.port (0: any free port)")
    demo.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    demo.add_argument("--linger", action="store_true",
                      help="keep serving /metrics after the orchestrator finishes")
    demo.add_argument("--snapshot-file", default=None,
                      help="write the final snapshot as JSON to this file")
    demo.set_defaults(run=run_demo)

    check = commands.add_parser("check-config", help="validate a config file (exit 2 if bad)")
    check.add_argument("file")
    check.set_defaults(run=_check_config)
    add_profile_command(commands)
    render.add_parser(commands)
    add_top_command(commands)
    add_watch_bmad_command(commands, _seconds, _port)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: choose a command (see {parser.prog} --help)",
              file=sys.stderr)
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
