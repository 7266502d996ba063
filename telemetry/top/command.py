"""``yolo-telemetry top``: the subcommand, its options, and the one-shot modes.

The live view needs Textual and ``--once`` needs Rich (the ``top`` extra);
without them the command says which extra to install and exits 2. ``--json``
needs neither. ``--once`` and ``--json`` read twice, ``--interval`` apart, so the
rates are there; they exit 1 when an instance did not answer (the frame says why).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time

from telemetry.top.agents import IDLE_BUDGET_S, TOOL_BUDGET_S, StateRules
from telemetry.top.fetch import Credentials
from telemetry.top.frame import FrameSettings, build_frame
from telemetry.top.model import Frame
from telemetry.top.promql import PrometheusSource
from telemetry.top.readings import History, Source
from telemetry.top.scrape import DEFAULT_URL, ScrapeSource

EXIT_LOST = 1
EXIT_USAGE = 2
EXTRA_HINT = "pip install 'yolo-telemetry[top]'"


def missing_packages(args: argparse.Namespace) -> list[str]:
    """The packages this mode needs that are not installed."""
    if args.json:
        return []
    needed = ["rich"] if args.once else ["textual", "rich"]
    return [name for name in needed if importlib.util.find_spec(name) is None]


def make_source(args: argparse.Namespace) -> Source:
    credentials = Credentials(args.token, args.user, args.cafile)
    if args.prometheus:
        return PrometheusSource(args.prometheus, credentials, args.timeout)
    return ScrapeSource(args.urls or [DEFAULT_URL], credentials, args.timeout)


def settings(args: argparse.Namespace) -> FrameSettings:
    return FrameSettings(rules=StateRules(idle_budget_s=args.idle_budget,
                                          tool_budget_s=args.tool_budget))


def read_frame(source: Source, interval_s: float, frame_settings: FrameSettings,
               selected: str | None = None) -> tuple[Frame, History]:
    """Two readings ``interval_s`` apart (one when the source has history), as a frame."""
    history = History()
    past = source.history()
    history.add_all(past)
    if not past:
        history.add_all(source.read())
        time.sleep(interval_s)
    history.add_all(source.read())
    return build_frame(history, time.time(), source.describe(), frame_settings, selected), history


def run_top(args: argparse.Namespace) -> int:
    missing = missing_packages(args)
    if missing:
        print(f"yolo-telemetry top: needs {' and '.join(missing)} (not installed): "
              f"{EXTRA_HINT}", file=sys.stderr)
        return EXIT_USAGE
    if args.prometheus and args.urls:
        print("yolo-telemetry top: give instance URLs or --prometheus URL, not both",
              file=sys.stderr)
        return EXIT_USAGE
    source = make_source(args)
    if args.json or args.once:
        frame, _ = read_frame(source, args.interval, settings(args), args.instance)
        if args.json:
            print(json.dumps(frame.to_dict(), indent=2))
        else:
            from telemetry.top.plain import frame_text
            width = shutil.get_terminal_size((120, 40)).columns
            print(frame_text(frame, width, color=sys.stdout.isatty(),
                             filter_text=args.filter), end="")
        return EXIT_LOST if any(i.status == "lost" for i in frame.header.instances) else 0
    from telemetry.top.app import TopApp
    TopApp(source, args.interval, settings(args), filter_text=args.filter,
           selected=args.instance).run()
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds; found {text!r}") from None
    if not 0 < value < 86400 * 365:
        raise argparse.ArgumentTypeError(f"expected seconds more than 0; found {text!r}")
    return value


def add_top_command(commands: argparse._SubParsersAction) -> None:
    """The ``top`` subcommand of ``yolo-telemetry``."""
    parser = commands.add_parser(
        "top", help="a live terminal view of running instances (needs the 'top' extra)",
        description="A live view of what the agents are doing: health, agents, handoffs, "
                    "workflows. Keys: s sort, r reverse, / filter, p pause, i instance, "
                    "? help, q quit.")
    parser.add_argument("urls", nargs="*", metavar="URL",
                        help=f"telemetry servers to read (default {DEFAULT_URL})")
    parser.add_argument("--prometheus", metavar="URL", default=None,
                        help="read every instance a Prometheus scrapes, through PromQL")
    parser.add_argument("--once", action="store_true", help="print one frame as text and exit")
    parser.add_argument("--json", action="store_true",
                        help="print the model behind one frame as JSON and exit")
    parser.add_argument("--interval", type=_seconds, default=2.0,
                        help="seconds between readings (default 2)")
    parser.add_argument("--timeout", type=_seconds, default=3.0,
                        help="seconds an instance has to answer (default 3)")
    parser.add_argument("--instance", default=None,
                        help="show only this instance (host:port, or Prometheus' instance)")
    parser.add_argument("--filter", default="", help="show only agents whose name has this")
    parser.add_argument("--idle-budget", type=_seconds, default=IDLE_BUDGET_S,
                        help="silence between calls that makes an agent stalled "
                             f"(default {IDLE_BUDGET_S:g}s, as AgentStalled)")
    parser.add_argument("--tool-budget", type=_seconds, default=TOOL_BUDGET_S,
                        help="time inside one tool call that makes an agent stalled "
                             f"(default {TOOL_BUDGET_S:g}s, as AgentStalled)")
    parser.add_argument("--token", default=os.environ.get("YOLO_TELEMETRY_TOKEN"),
                        help="bearer token (default $YOLO_TELEMETRY_TOKEN)")
    parser.add_argument("--user", default=None,
                        help="basic auth as USER:PASSWORD (or USER with "
                             "$YOLO_TELEMETRY_PASSWORD)")
    parser.add_argument("--cafile", default=None, help="CA bundle for a TLS server")
    parser.set_defaults(run=run_top)
