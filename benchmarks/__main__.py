"""``python -m benchmarks [--quick] [--json PATH] [--only NAME ...]``: run, print, record."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import BENCHMARKS
from benchmarks.harness import (
    Context,
    Settings,
    exporter_kinds,
    reference_events,
    tracing_available,
)
from benchmarks.receivers import receivers
from benchmarks.report import RESULTS_DIR, console_table, document, failed_result, utc_now, write
from telemetry import compiled


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="yolo-telemetry performance suite: every figure is a ratio against a "
                    "baseline measured in the same run. Targets are reported, not asserted.")
    parser.add_argument("--quick", action="store_true",
                        help="small counts (under a minute): proves the suite works")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="where to write the results (default: benchmarks/results/"
                             "latest.json for a full run, a temporary file for --quick)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=BENCHMARKS,
                        help=f"run only these ({', '.join(BENCHMARKS)})")
    parser.add_argument("--receivers", choices=("auto", "real", "closed"), default="auto",
                        help="OTLP target: a discarding rotel agent (real), a closed port, "
                             "or rotel when installed (auto, the default)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the quick-mode counts (the test suite uses 0.05)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # The SDK logs every span it drops; the benchmarks count drops instead.
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    settings = Settings(quick=args.quick, scale=args.scale)
    names = args.only or list(BENCHMARKS)
    started, started_utc = time.perf_counter(), utc_now()
    results = []
    crashed = False
    with receivers(args.receivers) as sinks:
        ctx = Context(settings, sinks, reference_events(), tracing_available())
        environment = {"exporters": exporter_kinds(), "receivers": sinks.describe(),
                       "tracing_available": ctx.tracing, "build": compiled.summary()}
        for name in names:
            module = importlib.import_module(f"{__package__}.{name}")
            print(f"running {name}: {module.TITLE} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                result = module.run(ctx)
            except Exception as error:
                traceback.print_exc()
                result = failed_result(name, module.TITLE, error)
                crashed = True
            result.seconds = time.perf_counter() - began
            results.append(result)
    doc = document(results, quick=settings.quick, scale=settings.scale,
                   environment=environment, started_utc=started_utc,
                   seconds=time.perf_counter() - started)
    if args.json is not None:
        path = args.json
    elif settings.quick:
        path = Path(tempfile.mkdtemp(prefix="yolo-bench-")) / "quick.json"
    else:
        path = RESULTS_DIR / "latest.json"
    write(doc, path)
    print(console_table(doc))
    stubs = [name for name, kind in environment["exporters"].items() if kind == "stub"]
    if stubs:
        print(f"note: exporters still stubs (enabled, no work): {', '.join(stubs)}")
    if not ctx.tracing:
        print("note: tracing is not implemented yet: traced rows are n/a")
    print(f"build: {environment['build']} (telemetry/compiled.py)")
    print(f"results: {path} ({doc['seconds']:.0f} s)")
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
