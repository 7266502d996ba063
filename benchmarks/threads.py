"""Throughput from 1, 2 and 4 threads sending concurrently, and lost updates.

All threads send ``handoff_completed`` with the same labels, so they all update the
same cells: the worst case for a lost update. Sent events are compared with the
aggregator's counts after every run. Bare blinker sends from as many threads are the
baseline of the throughput ratio.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from benchmarks.harness import (
    HANDOFF,
    Context,
    Result,
    bare_signals,
    connected,
    figure,
    interleave,
    median,
    paired_ratios,
    repeat,
    spread,
    start_telemetry,
    yolo_signals,
)

NAME = "threads"
TITLE = "concurrent senders: throughput and lost updates"
THREADS = (1, 2, 4)


def _concurrent(body: Callable[[int], None], threads: int, per_thread: int) -> float:
    """Events per second with ``threads`` threads each running ``body(per_thread)``."""
    barrier = threading.Barrier(threads + 1)

    def worker() -> None:
        barrier.wait()
        body(per_thread)

    workers = [threading.Thread(target=worker, name=f"bench-sender-{i}") for i in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    return threads * per_thread / (time.perf_counter() - started)


def run(ctx: Context) -> Result:
    from telemetry import catalogue as cat

    settings = ctx.settings
    per_thread = settings.count(full=60_000, quick=10_000, minimum=500)
    rounds = settings.rounds(full=5, quick=3)
    short, payload = HANDOFF
    labels = (payload["from_agent"], payload["to_agent"])
    bare, ours = repeat(bare_signals()[short], payload), repeat(yolo_signals()[short], payload)
    telemetry = start_telemetry(ctx.config(), receiving=False)
    aggregator = telemetry.aggregator
    lost = {n: 0 for n in THREADS}
    sent = {n: 0 for n in THREADS}

    def measure_ours(n: int) -> Callable[[], float]:
        def once() -> float:
            before = aggregator.value(cat.HANDOFFS, labels)
            before_events = aggregator.value(cat.EVENTS, (f"yolo.{short}",))
            with connected(telemetry):
                rate = _concurrent(ours, n, per_thread)
            counted = aggregator.value(cat.HANDOFFS, labels) - before
            counted_events = aggregator.value(cat.EVENTS, (f"yolo.{short}",)) - before_events
            sent[n] += n * per_thread
            lost[n] += (n * per_thread - counted) + (n * per_thread - counted_events)
            return rate
        return once

    variants = {}
    for n in THREADS:
        variants[f"bare_{n}"] = lambda n=n: _concurrent(bare, n, per_thread)
        variants[f"ours_{n}"] = measure_ours(n)
    try:
        samples = interleave(variants, rounds)
    finally:
        telemetry.stop()

    figures = []
    for n in THREADS:
        ratios = paired_ratios(samples, f"ours_{n}", f"bare_{n}")
        figures.append(figure(
            NAME, f"{n} thread{'s' if n > 1 else ''}: events/s", median(samples[f"ours_{n}"]),
            "events/s", noise=spread(samples[f"ours_{n}"]),
            note=f"{median(ratios):.2f}x the bare-send rate"))
    scaling = paired_ratios(samples, "ours_4", "ours_1")
    figures.append(figure(NAME, "4 threads / 1 thread: events/s", median(scaling), "x",
                          noise=spread(scaling), note="informative (one GIL)"))
    figures.append(figure(NAME, "lost updates (all runs)", float(sum(lost.values())), "events",
                          target="== 0", note=f"{sum(sent.values()):,} events sent"))
    details = {"events_per_thread": per_thread, "rounds": rounds,
               "events_per_s": {k: round(median(v)) for k, v in samples.items()},
               "sent": sent, "lost": lost}
    return Result(NAME, TITLE, figures, details)
