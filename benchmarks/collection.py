"""How long a sender waits while another thread reads 10,000 series.

A started pipeline (Prometheus and the alert evaluator, no push exporter) holds 10,000
label sets of the handoff counter and histogram. One thread sends ``handoff_completed``
in a loop, timing every send, while the main thread reads all series over and over,
in turn:

* **idle**: nothing reads (the baseline: the host's own pauses and the interpreter's
  thread switches, every ``sys.getswitchinterval()``);
* **copy_series**: ``Aggregator.copy_series()``, the columns an exposition writer
  reads (no object per cell);
* **collect**: ``Aggregator.collect()``, a ``Sample`` per cell (kept for compatibility);
* **otlp_export**: what one OTLP metric export does before the network: read the
  series, keep the recorded ones (``ExportPoints``) and encode the request
  (``MetricsEncoder``);
* **statsd_flush**: what one StatsD flush does before the network
  (``StatsdExporter._build``: read, counter deltas, changed gauges, lines), each
  flush taken as delivered;
* **scrape**: ``GET /metrics`` over loopback, the whole exposition.

For each: the time per read, the sends' p99 and longest time, and the full
(generation 2) garbage collections that started meanwhile (``gc.callbacks``); a full
collection stops every thread, the sender's too.
"""

from __future__ import annotations

import gc
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import blinker

from benchmarks.harness import (
    Context,
    Result,
    connected,
    figure,
    median,
    start_telemetry,
)
from telemetry import catalogue as cat

NAME = "collection"
TITLE = "sends during 10,000-series collections and scrapes"


def _populate(series: int) -> Any:
    """A pipeline serving /metrics (the alert evaluator on, as by default) and no push
    exporter: their own timers would read every series during the measured reads."""
    telemetry = start_telemetry({
        "server": {"host": "127.0.0.1", "port": 0},
        "exporters": {"prometheus": {"enabled": True}},
        "limits": {"max_series_per_metric": max(20_000, series * 2)}})
    send = blinker.signal("yolo.handoff_completed").send
    try:
        for _ in range(2):
            for index in range(series):
                send(None, from_agent=f"agent-{index:05d}", to_agent="dev", duration_s=0.3)
    finally:
        telemetry.aggregator.disconnect()
    return telemetry


class _FullCollections:
    """Counts generation-2 collections started while it is installed."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] == 2:
            self.count += 1

    def __enter__(self) -> _FullCollections:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def _otlp_export(aggregator: Any) -> Callable[[], object]:
    """One OTLP metric export up to the bytes it would send (cumulative)."""
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from exporters.otlp.fastpath.metric_encoding import MetricsEncoder, sdk_header
    from exporters.otlp.metrics import SCHEMA_URL, build_resource
    from exporters.otlp.points import ExportPoints

    scope = InstrumentationScope("yolo-telemetry", "0", SCHEMA_URL)
    encoder = MetricsEncoder(*sdk_header(build_resource("bench", "bench", "0"), scope))
    points = ExportPoints()

    def once() -> bytes:
        now_ns = time.time_ns()
        payload, _ = encoder.encode(points.prepare(aggregator.copy_series(), now_ns), now_ns)
        points.commit()
        return payload
    return once


def _statsd_flush(aggregator: Any) -> Callable[[], object]:
    """One StatsD flush up to its lines, taken as delivered (no socket)."""
    from exporters.statsd.exporter import StatsdExporter

    exporter = StatsdExporter(StatsdExporter.Config(), aggregator, None)

    def once() -> object:
        batch = exporter._build()
        for state, value in batch.commits.values():
            state.sent = value
        return batch
    return once


def _while_sending(read: Callable[[], object], reads: int,
                   ) -> tuple[list[float], list[float], int, float]:
    """Send latencies (s) while ``read`` runs ``reads`` times, the longest send of each
    read, the full collections that started meanwhile, and the median time of a read."""
    send = blinker.signal("yolo.handoff_completed").send
    latencies: list[float] = []
    longest = [0.0] * reads
    current = [0]
    done, started = threading.Event(), threading.Event()

    def sender() -> None:
        clock = time.perf_counter
        started.set()
        while not done.is_set():
            begun = clock()
            send(None, from_agent="agent-00001", to_agent="dev", duration_s=0.3)
            took = clock() - begun
            latencies.append(took)
            index = current[0]
            if took > longest[index]:
                longest[index] = took

    gc.collect()  # every variant starts from the same collector state
    thread = threading.Thread(target=sender, name="bench-sender")
    took: list[float] = []
    with _FullCollections() as full:
        thread.start()
        started.wait(10)
        try:
            for index in range(reads):
                current[0] = index
                begun = time.perf_counter()
                read()
                took.append(time.perf_counter() - begun)
        finally:
            done.set()
            thread.join()
    return latencies, longest, full.count, median(took)


def _scrape(url: str) -> Callable[[], object]:
    def once() -> bytes:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    return once


def run(ctx: Context) -> Result:
    settings = ctx.settings
    series = settings.count(full=10_000, quick=10_000, minimum=500)
    reads = settings.count(full=12, quick=3, minimum=2)
    telemetry = _populate(series)
    aggregator = telemetry.aggregator
    variants: dict[str, Callable[[], object]] = {
        "idle": lambda: time.sleep(0.1),
        "copy_series": aggregator.copy_series,
        "collect": aggregator.collect,
        "otlp_export": _otlp_export(aggregator),
        "statsd_flush": _statsd_flush(aggregator),
        "scrape": _scrape(f"{telemetry.url}/metrics"),
    }
    found: dict[str, dict[str, float]] = {}
    try:
        with connected(telemetry):
            for name, read in variants.items():
                latencies, longest, full, per_read = _while_sending(read, reads)
                latencies.sort()
                found[name] = {"read_ms": per_read * 1e3,
                               "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
                               "max_ms": latencies[-1] * 1e3,
                               "median_read_max_ms": median(longest) * 1e3,
                               "full_gcs": full, "sends": len(latencies)}
        kept = aggregator.series_count(cat.HANDOFF_DURATION)
    finally:
        telemetry.stop()
    label = f"{series:,} series"
    idle = found["idle"]
    figures = [figure(NAME, "no reader: longest send (median of rounds)",
                      idle["median_read_max_ms"], "ms",
                      note=f"the host's and interpreter's own pauses; longest of all "
                           f"{idle['max_ms']:.2f} ms, p99 {idle['p99_us']:.0f} us")]
    # name, the longest-send target, the full-collection target. The push exporters'
    # own work between two holds of the lock (encoding, formatting) keeps the
    # interpreter for up to its switch interval (5 ms), so their longest send is shown,
    # not judged; that they start no full collection is their target.
    for name, longest, full_gcs in (("copy_series", "<= 5", "== 0"), ("collect", None, None),
                                    ("otlp_export", None, "== 0"),
                                    ("statsd_flush", None, "== 0"),
                                    ("scrape", "<= 5", "== 0")):
        numbers = found[name]
        figures.append(figure(NAME, f"{name}: time per read ({label}, median)",
                              numbers["read_ms"], "ms", note="informative"))
        figures.append(figure(NAME, f"{name}: longest send during a read ({label}, median)",
                              numbers["median_read_max_ms"], "ms", target=longest,
                              note=f"longest of all {numbers['max_ms']:.1f} ms, "
                                   f"p99 {numbers['p99_us']:.0f} us"))
        figures.append(figure(NAME, f"{name}: full collections during the reads ({label})",
                              numbers["full_gcs"], "n", target=full_gcs,
                              note=f"in {reads} reads" + ("" if full_gcs else "; informative")))
    details = {"series": series, "handoff_series_kept": kept, "reads_per_variant": reads,
               "variants": {name: {k: round(v, 3) for k, v in numbers.items()}
                            for name, numbers in found.items()}}
    return Result(NAME, TITLE, figures, details)
