"""Where the per-event time goes: ``python -m benchmarks.diagnostics.hotspots [--events N]``.

Not part of the suite's table: a diagnostic for whoever optimises the per-event
path. It times the stages of one ``handoff_completed`` event separately (interleaved,
median over rounds, collector paused) so their differences isolate each layer, then
runs cProfile over the reference mix to rank functions by their own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from typing import Any

import blinker

from benchmarks.harness import (
    HANDOFF,
    bare_signals,
    interleave,
    median,
    noop_receiver,
    reference_events,
    repeat,
    replay,
    time_loop,
    yolo_signals,
)


def stages(count: int, rounds: int) -> dict[str, float]:
    """Nanoseconds per event of each layer, cheapest first."""
    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.aggregation.handlers.table import HANDLERS
    from telemetry.signals import BY_NAME
    from telemetry.validation import payload_check

    short, payload = HANDOFF
    aggregator = Aggregator()
    aggregator.connect()
    try:
        receive = aggregator._receivers[f"yolo.{short}"]
        handler, state = HANDLERS[f"yolo.{short}"], aggregator.state
        check = payload_check(BY_NAME[f"yolo.{short}"])
        lock = aggregator._lock
        empty = blinker.Namespace().signal("empty")

        def call(function: Any):
            def body(n: int) -> None:
                for _ in range(n):
                    function(None, **payload)
            return body

        def handler_only(n: int) -> None:
            now = time.monotonic()
            for _ in range(n):
                with lock:
                    handler(state, check(payload), None, now)

        def loop_only(n: int) -> None:
            for _ in range(n):
                pass

        bodies = {
            "loop": loop_only,
            "empty send (no receivers)": repeat(empty, payload),
            "no-op function call": call(noop_receiver),
            "bare send (no-op receiver)": repeat(bare_signals([short])[short], payload),
            "checked handler under the lock": handler_only,
            "aggregator receive() called directly": call(receive),
            "pipeline send": repeat(yolo_signals()[short], payload),
        }
        samples = interleave({name: (lambda b=body: time_loop(b, count))
                              for name, body in bodies.items()}, rounds)
    finally:
        aggregator.disconnect()
    return {name: median(values) * 1e9 for name, values in samples.items()}


def profile(count: int, limit: int) -> str:
    from telemetry.aggregation.aggregator import Aggregator

    aggregator = Aggregator()
    aggregator.connect()
    body = replay(yolo_signals(), reference_events())
    body(2000)  # every cell exists before profiling
    profiler = cProfile.Profile()
    try:
        profiler.runcall(body, count)
    finally:
        aggregator.disconnect()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.diagnostics.hotspots")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    found = stages(args.events, args.rounds)
    print("ns per handoff_completed event, by layer:")
    for name, ns in found.items():
        print(f"  {name:40s} {ns:8.0f}")
    call = found["no-op function call"] - found["loop"]
    print("derived:")
    print(f"  blinker dispatch to one receiver          "
          f"{found['bare send (no-op receiver)'] - found['no-op function call']:8.0f}")
    own = (found["aggregator receive() called directly"] - found["checked handler under the lock"]
           - call)
    print(f"  receive() minus its handler and the call  {own:8.0f}")
    print(f"  pipeline send / bare send                 "
          f"{found['pipeline send'] / found['bare send (no-op receiver)']:8.2f}")
    print(f"  pipeline send - empty send (in-line cost) "
          f"{found['pipeline send'] - found['empty send (no receivers)']:8.0f}")
    print()
    print(f"cProfile of {args.events:,} events of the reference mix (own time first):")
    print(profile(args.events, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
