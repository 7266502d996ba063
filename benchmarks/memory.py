"""Memory growth (RSS) over many events with a bounded label set.

The recorded reference mix is replayed through the started pipeline (metrics only,
all exporters enabled). A warm-up first fills every cell, cache and allocator arena;
RSS is read after it, at checkpoints, and at the end, each after a full collection.
The same count of bare blinker sends gives the baseline growth of the loop itself.
"""

from __future__ import annotations

import gc

import psutil

from benchmarks.harness import (
    Context,
    Result,
    bare_signals,
    figure,
    replay,
    start_telemetry,
    yolo_signals,
)

NAME = "memory"
TITLE = "RSS growth over many events with a bounded label set"
MIB = 1024 * 1024


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def _growth(body, warmup: int, count: int, checkpoints: int) -> tuple[float, list[float]]:
    body(warmup)
    start = _rss()
    trail = []
    step = max(count // checkpoints, 1)
    sent = 0
    while sent < count:
        chunk = min(step, count - sent)
        body(chunk)
        sent += chunk
        trail.append(round((_rss() - start) / MIB, 3))
    return trail[-1], trail


def run(ctx: Context) -> Result:
    settings = ctx.settings
    count = settings.count(full=10_000_000, quick=200_000, minimum=2_000)
    warmup = settings.count(full=300_000, quick=30_000, minimum=1_000)
    checkpoints = 10
    bare_growth, bare_trail = _growth(replay(bare_signals(), ctx.events), warmup, count,
                                      checkpoints)
    telemetry = start_telemetry(ctx.config())
    try:
        growth, trail = _growth(replay(yolo_signals(), ctx.events), warmup, count, checkpoints)
        counted = telemetry.snapshot()[1].events_total
    finally:
        telemetry.stop()
    note = "" if not settings.quick else f"quick mode: {count:,} events, reported only"
    figures = [
        figure(NAME, f"growth over {count:,} events (pipeline)", growth, "MiB",
               target=None if settings.quick else "< 5", note=note),
        figure(NAME, f"growth over {count:,} events (bare sends, baseline)", bare_growth,
               "MiB", note="informative"),
    ]
    details = {"events": count, "warmup_events": warmup, "events_counted": counted,
               "growth_trail_mib": trail, "bare_growth_trail_mib": bare_trail,
               "rss_end_mib": round(psutil.Process().memory_info().rss / MIB, 1)}
    return Result(NAME, TITLE, figures, details)
