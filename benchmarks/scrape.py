"""/metrics scrape time against series count, and against events recorded.

Pipelines with 100, 1,000 and 10,000 label sets of the handoff metrics (a counter
and a histogram per distinct ``from_agent``, ``limits.max_series_per_metric``
raised), plus one with 1,000 label sets and ten times the events, are populated one
at a time and then scraped over HTTP in interleaved rounds.
"""

from __future__ import annotations

import gc
import threading
import time
import urllib.request
from typing import Any

import blinker

from benchmarks.harness import (
    Context,
    Result,
    connected,
    figure,
    interleave,
    median,
    paired_ratios,
    spread,
    start_telemetry,
)

NAME = "scrape"
TITLE = "/metrics scrape time vs series and vs events"
EVENTS_PER_SERIES = 2


def _populate(ctx: Context, series: int, events_per_series: int) -> Any:
    telemetry = start_telemetry(ctx.config(max_series_per_metric=max(20_000, series * 2)))
    send = blinker.signal("yolo.handoff_completed").send
    try:
        for _ in range(events_per_series):
            for i in range(series):
                send(None, from_agent=f"agent-{i:05d}", to_agent="dev", duration_s=0.3)
    finally:
        telemetry.aggregator.disconnect()  # keep its state; receive nothing more
    return telemetry


def _scraper(url: str, sizes: list[int]):
    def once() -> float:
        gc.collect()  # every scrape starts from the same collector state
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:
            body = response.read()
        took = time.perf_counter() - started
        sizes.append(len(body))
        return took
    return once


def run(ctx: Context) -> Result:
    settings = ctx.settings
    counts = [settings.count(full=n, quick=n, minimum=10) for n in (100, 1_000, 10_000)]
    rounds = settings.rounds(full=9, quick=3)
    many_events = EVENTS_PER_SERIES * 10
    pipelines: dict[str, Any] = {}
    sizes: dict[str, list[int]] = {}

    def scrapers(keys: list[str]) -> dict[str, Any]:
        for key in keys:
            sizes[key] = []
        return {key: _scraper(f"{pipelines[key].url}/metrics", sizes[key]) for key in keys}

    try:
        # Series sweep first; then, with only the mid-size pipeline left (a full
        # collection scans every live pipeline), the same series with 10x the events.
        sweep = [f"series_{n}" for n in counts]
        for n, key in zip(counts, sweep, strict=True):
            pipelines[key] = _populate(ctx, n, EVENTS_PER_SERIES)
        samples = interleave(scrapers(sweep), rounds)
        kept = {key: pipelines[key].aggregator.series_count(_handoffs()) for key in sweep}
        largest = pipelines[sweep[-1]]
        with connected(largest):
            latencies, collections = _latency_during_scrapes(f"{largest.url}/metrics",
                                                             max(rounds // 3, 1))
        for key in (sweep[0], sweep[2]):
            pipelines.pop(key).stop()
        pipelines["series_mid_10x_events"] = _populate(ctx, counts[1], many_events)
        kept["series_mid_10x_events"] = pipelines["series_mid_10x_events"].aggregator \
            .series_count(_handoffs())
        flat_samples = interleave(scrapers([sweep[1], "series_mid_10x_events"]), rounds)
    finally:
        for telemetry in pipelines.values():
            telemetry.stop()

    figures = []
    per_series = {}
    for n in counts:
        per_series[n] = [t / n for t in samples[f"series_{n}"]]
        figures.append(figure(NAME, f"{n:,} series: time per series", median(per_series[n]) * 1e6,
                              "us", noise=spread(per_series[n]) * 1e6,
                              note=f"scrape {median(samples[f'series_{n}']) * 1e3:.1f} ms"))
    small, large = counts[1], counts[2]
    linear = [b / a for a, b in zip(per_series[small], per_series[large], strict=True)]
    figures.append(figure(NAME, f"linearity: per-series time {large:,} / {small:,}",
                          median(linear), "x", target="<= 1.5", noise=spread(linear)))
    flat = paired_ratios(flat_samples, "series_mid_10x_events", f"series_{small}")
    figures.append(figure(NAME, f"{small:,} series, 10x events / 1x events", median(flat), "x",
                          target="<= 1.2", noise=spread(flat)))
    latencies.sort()
    p99 = latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)]
    figures.append(figure(NAME, f"send latency during {counts[-1]:,}-series scrapes: p99",
                          p99 * 1e6, "us", note="informative"))
    figures.append(figure(NAME, f"send latency during {counts[-1]:,}-series scrapes: max",
                          latencies[-1] * 1e3, "ms", target="<= 5",
                          note="the reader's chunks of the lock, the interpreter's switches "
                               "and the host"))
    figures.append(figure(NAME, f"full collections during {counts[-1]:,}-series scrapes",
                          collections[2], "", target="== 0",
                          note=f"{collections[0]} young, {collections[1]} middle, over "
                               f"{max(rounds // 3, 1)} scrapes while another thread sends"))
    details = {
        "rounds": rounds, "sends_during_scrapes": len(latencies),
        "gc_collections_during_scrapes": collections,
        "events_per_series": EVENTS_PER_SERIES,
        "scrape_ms": {k: round(median(v) * 1e3, 2) for k, v in samples.items()},
        "scrape_ms_events_comparison": {k: round(median(v) * 1e3, 2)
                                        for k, v in flat_samples.items()},
        "body_bytes": {k: v[-1] for k, v in sizes.items()},
        "handoff_series_kept": kept,
    }
    return Result(NAME, TITLE, figures, details)


def _latency_during_scrapes(url: str, scrapes: int) -> tuple[list[float], list[int]]:
    """Seconds each send took while another thread scraped ``scrapes`` times, and the
    garbage collections per generation meanwhile."""
    send = blinker.signal("yolo.handoff_completed").send
    latencies: list[float] = []
    done = threading.Event()
    scraping = threading.Event()
    collections = [0, 0, 0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    def sender() -> None:
        # Only sends made wholly while a scrape runs count: not those the benchmark's
        # own gc.collect() between scrapes stops.
        clock = time.perf_counter
        while not done.is_set():
            measuring = scraping.is_set()
            started = clock()
            send(None, from_agent="agent-00001", to_agent="dev", duration_s=0.3)
            elapsed = clock() - started
            if measuring and scraping.is_set():
                latencies.append(elapsed)

    thread = threading.Thread(target=sender, name="bench-sender")
    thread.start()
    try:
        for _ in range(scrapes):
            gc.collect()  # every scrape starts from the same collector state (not counted)
            gc.callbacks.append(count)
            scraping.set()
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    response.read()
            finally:
                scraping.clear()
                gc.callbacks.remove(count)
    finally:
        done.set()
        thread.join()
    return latencies, collections


def _handoffs():
    from telemetry import catalogue as cat

    return cat.HANDOFFS
