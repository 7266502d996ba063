"""What the adapter scripts share: their arguments, the interleaved rounds of their
variants against one running pipeline, and the report.

A variant is a function that runs the framework's scripted story ``--runs`` times,
set up as the variant needs (the adapter instrumented, an empty middleware patched
in, ...) and put back as it was, and returns the ``(wall, thread CPU)`` seconds of
those runs. ``"without"`` is the baseline every other variant is reported against.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from benchmarks.harness import interleave, median, spread, start_telemetry

#: A variant: runs the story ``--runs`` times; the (wall, thread CPU) seconds it took.
Variant = Callable[[], tuple[float, float]]


def arguments(doc: str, runs: int) -> argparse.Namespace:
    """``--rounds`` and ``--runs`` (per measurement, ``runs`` by default)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=runs, help="runs per measurement")
    return parser.parse_args()


def timed_runs(story: Callable[[], Awaitable[Any]], count: int) -> tuple[float, float]:
    """The wall and thread CPU seconds of ``count`` runs of the async ``story``, in one
    event loop on this thread: where the framework calls the adapter and the
    aggregator records."""
    async def runs() -> None:
        for _ in range(count):
            await story()

    wall, cpu = time.perf_counter(), time.thread_time()
    asyncio.run(runs())
    return time.perf_counter() - wall, time.thread_time() - cpu


@contextlib.contextmanager
def instrumented(instrument: Callable[[], Any]) -> Iterator[None]:
    """The adapter instrumented (``instrument()``) inside, uninstrumented after."""
    handle = instrument()
    try:
        yield
    finally:
        handle.uninstrument()


@contextlib.contextmanager
def patched(owner: type, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` set to ``value`` inside, put back after."""
    original = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def measure_rounds(variants: Mapping[str, Variant], rounds: int,
                   ) -> tuple[dict[str, list[float]], dict[str, list[float]], int]:
    """Every variant once per round, the order rotating (``benchmarks/README.md``,
    "Method"), with telemetry running (the default metrics pipeline, the server on a
    free port) in all of them: the wall seconds per round (the warm-up round left
    out), the thread CPU seconds per round (the warm-up round first), and the signals
    telemetry received."""
    telemetry = start_telemetry({"server": {"port": 0}})
    events_before = telemetry.snapshot()[1].events_total
    cpu: dict[str, list[float]] = {name: [] for name in variants}

    def measure(name: str) -> float:
        wall, thread_cpu = variants[name]()
        cpu[name].append(thread_cpu)
        return wall

    try:
        wall = interleave({name: (lambda name=name: measure(name)) for name in variants},
                          rounds=rounds)
        events = telemetry.snapshot()[1].events_total - events_before
    finally:
        telemetry.stop()
    return wall, cpu, events


def print_rounds(title: str, wall: Mapping[str, list[float]],
                 cpu: Mapping[str, list[float]], *, runs: int, rounds: int,
                 calls_per_run: int, call_name: str, events: int) -> None:
    """The report of a framework adapter's overhead script: for wall and CPU time, each
    variant's time per run against ``"without"`` (paired by round; the first CPU round
    is the warm-up and left out), and the extra per run and per adapter hook call
    (``calls_per_run`` of them, named ``call_name``) for ``"with"``."""
    print(f"{title}, {rounds} rounds of {runs} runs")
    variants = [name for name in cpu if name != "without"]
    for label, samples in (("wall time", wall),
                           ("CPU time", {k: v[1:] for k, v in cpu.items()})):
        without_ms = median(samples["without"]) / runs * 1e3
        print(f"  {label}: run without {without_ms:.3f} ms")
        for variant in variants:
            pairs = list(zip(samples[variant], samples["without"], strict=True))
            ratios = [a / b for a, b in pairs]
            extra_us = [(a - b) / runs * 1e6 for a, b in pairs]
            per_call = (f" ({median(extra_us) / calls_per_run:.1f} us per {call_name})"
                        if variant == "with" else "")
            print(f"    {variant + ' / without':28} {median(ratios):.4f} x ± "
                  f"{spread(ratios):.4f}; extra per run {median(extra_us):7.1f} us ± "
                  f"{spread(extra_us):.1f}{per_call}")
    print(f"  signals received: {events} ({events / ((rounds + 1) * runs):.0f}"
          " per run with the adapter)")
