"""Before and after a change, in turn: the overhead benchmark's per-event figures.

    python benchmarks/diagnostics/paired.py --baseline /tmp/base    # traced, both figures
    python benchmarks/diagnostics/paired.py --baseline /tmp/base --pipeline metrics --only inline

A full run measures each figure once, and between two runs on a shared machine a
figure moves by as much as a change of a tenth. This measures the two per-event
figures of :mod:`benchmarks.overhead` in child processes, alternately on ``DIR``'s
code (``git archive <commit> | tar -x -C DIR``, built as this checkout is) and on this
checkout's, the order swapping every process, and prints both medians and their ratio:

* **inline**: the sending thread's CPU per event, as the overhead benchmark derives
  it: its fast runs (the workflow without its 1 ms of work, 20 workflows) with and
  without the pipeline, paired per round, ``--rounds`` rounds per process;
* **export**: the span export thread's CPU per event (traced only), as its steady
  phase measures it: the workflow with its work, back to back, for ``--seconds``
  after a warm-up, the worker's CPU and a flush of what is left.

The receivers are started once and shared. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]


def measure(figure: str, pipeline: str, endpoint: str, statsd_port: int, rounds: int,
            seconds: float) -> float:
    """``figure`` of this process's code, in microseconds per event."""
    from benchmarks import overhead
    from benchmarks.harness import burn_1ms, interleave, median, pipeline_config
    from telemetry.cli.simulator import ReferenceOrchestrator

    burn_1ms()  # calibrate before anything is timed
    started = overhead.Pipeline(pipeline_config(otlp_endpoint=endpoint, statsd_port=statsd_port,
                                                tracing=pipeline == "traced"))
    try:
        if figure == "export":
            steady = started.steady(warm_up_s=5.0, seconds=seconds)
            return steady["span_export_s"] / steady["events"] * 1e6
        aggregator = started.telemetry.aggregator
        aggregator.connect()
        ReferenceOrchestrator(seed=overhead.SEED).run(workflows=3)  # every cell exists
        aggregator.disconnect()
        fast = interleave({"without": overhead._fast_runner(None, 20),
                           "with": overhead._fast_runner(started, 20)}, rounds)
        counting = ReferenceOrchestrator(seed=overhead.SEED)
        counting.run(workflows=1)
        inline = median([w - b for w, b in zip(fast["with"], fast["without"], strict=True)])
        return inline / counting.stats.events * 1e6
    finally:
        started.telemetry.stop()


def _child(code: Path, args: argparse.Namespace, figure: str, endpoint: str,
           port: int) -> float:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", figure,
               "--code", str(code), "--pipeline", args.pipeline, "--otlp-endpoint", endpoint,
               "--statsd-port", str(port), "--rounds", str(args.rounds),
               "--seconds", str(args.seconds)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=code)
    if done.returncode:
        raise RuntimeError(f"{figure} on {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace, endpoint: str, port: int) -> None:
    variants = {"before": Path(args.baseline).resolve(), "after": HERE}
    figures = [args.only] if args.only else ["inline"] + (
        ["export"] if args.pipeline == "traced" else [])
    for figure in figures:
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for number in range(args.processes):
            order = list(variants) if number % 2 == 0 else list(variants)[::-1]
            for name in order:
                runs[name].append(_child(variants[name], args, figure, endpoint, port))
        before, after = (statistics.median(runs[name]) for name in variants)
        lower = sum(a < b for a, b in zip(runs["after"], runs["before"], strict=True))
        print(f"{args.pipeline} {figure}: before {before:.3f} us/event, after {after:.3f} "
              f"us/event, after/before {after / before:.3f} (after lower in {lower} of "
              f"{args.processes} pairs)")
        print(f"  before: {[round(v, 3) for v in runs['before']]}")
        print(f"  after:  {[round(v, 3) for v in runs['after']]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="the checkout to compare with")
    parser.add_argument("--pipeline", choices=("traced", "metrics"), default="traced")
    parser.add_argument("--only", choices=("inline", "export"))
    parser.add_argument("--processes", type=int, default=10, help="processes each")
    parser.add_argument("--rounds", type=int, default=31, help="inline: rounds per process")
    parser.add_argument("--seconds", type=float, default=20.0, help="export: measured seconds")
    parser.add_argument("--receivers", default="auto", choices=("auto", "real", "closed"))
    parser.add_argument("--child", choices=("inline", "export"), help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--otlp-endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--statsd-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.code).resolve() if args.code else HERE))
    if args.child:
        print(json.dumps(measure(args.child, args.pipeline, args.otlp_endpoint,
                                 args.statsd_port, args.rounds, args.seconds)))
        return 0
    if not args.baseline:
        parser.error("--baseline DIR is required")
    from benchmarks.receivers import receivers

    with receivers(args.receivers) as found:
        print(f"OTLP to {found.otlp_kind} {found.otlp_endpoint}; StatsD to an unread socket",
              file=sys.stderr)
        compare(args, found.otlp_endpoint, found.statsd_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
