"""/metrics render: our exposition writer against prometheus_client's ``generate_latest``.

For 100, 1,000 and 10,000 label sets of the handoff counter and histogram (two
events each), one aggregator is rendered by the exporter in both formats and by
prometheus_client's encoder over the exporter's collector (the path before the
writer), and a prometheus_client registry holding a ``Counter`` and a ``Histogram``
with the same label sets and observations is rendered by ``generate_latest``: the
baseline, in interleaved rounds. A render here is what /metrics does between
reading the request and writing the response, collection included.

Garbage collections are counted (``gc.callbacks``) over renders of the largest size,
the collector enabled and started from the same state as every render: a full
collection stops every thread, senders included.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import blinker
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from benchmarks.harness import Context, Result, figure, interleave, median, paired_ratios, spread
from exporters.prometheus import PrometheusExporter
from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator

NAME = "exposition"
TITLE = "/metrics render vs prometheus_client generate_latest"
EVENTS_PER_SERIES = 2
TEXT = "text/plain; version=0.0.4"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
#: Renders of the largest size whose garbage collections are counted, per variant.
GC_RENDERS = 3


def _agents(series: int) -> list[str]:
    return [f"agent-{i:05d}" for i in range(series)]


def _ours(series: int) -> PrometheusExporter:
    aggregator = Aggregator(max_series=max(20_000, series * 2))
    aggregator.connect()
    send = blinker.signal("yolo.handoff_completed").send
    try:
        for _ in range(EVENTS_PER_SERIES):
            for agent in _agents(series):
                send(None, from_agent=agent, to_agent="dev", duration_s=0.3)
    finally:
        aggregator.disconnect()  # keep its state; receive nothing more
    return PrometheusExporter(PrometheusExporter.Config(), aggregator, None)


def _theirs(series: int) -> CollectorRegistry:
    """The same series as prometheus_client's own metrics."""
    registry = CollectorRegistry()
    labels = ["from_agent", "to_agent"]
    counter = Counter("yolo_handoffs", cat.HANDOFFS.help, labels, registry=registry)
    histogram = Histogram("yolo_handoff_duration_seconds", cat.HANDOFF_DURATION.help, labels,
                          buckets=cat.HANDOFF_DURATION.buckets, registry=registry)
    for _ in range(EVENTS_PER_SERIES):
        for agent in _agents(series):
            counter.labels(agent, "dev").inc()
            histogram.labels(agent, "dev").observe(0.3)
    return registry


def _timed(render: Callable[[], Any]) -> Callable[[], float]:
    def once() -> float:
        gc.collect()  # every render starts from the same collector state
        started = time.perf_counter()
        render()
        return time.perf_counter() - started
    return once


def _variants(exporter: PrometheusExporter, registry: CollectorRegistry,
              ) -> dict[str, Callable[[], Any]]:
    return {"text": lambda: exporter.render(TEXT),
            "openmetrics": lambda: exporter.render(OPENMETRICS),
            "before": lambda: exporter.render_with_prometheus_client(TEXT),
            "generate_latest": lambda: generate_latest(registry)}


def _size(rendered: Any) -> int:
    """The body's length: the exporter returns (body, content type), prometheus_client
    the body."""
    return len(rendered[0] if isinstance(rendered, tuple) else rendered)


def _collections(render: Callable[[], Any]) -> list[int]:
    """Garbage collections per generation during ``GC_RENDERS`` renders."""
    counts = [0, 0, 0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            counts[info["generation"]] += 1

    for _ in range(GC_RENDERS):
        gc.collect()
        gc.callbacks.append(count)
        try:
            render()
        finally:
            gc.callbacks.remove(count)
    return counts


def run(ctx: Context) -> Result:
    settings = ctx.settings
    counts = [settings.count(full=n, quick=n, minimum=10) for n in (100, 1_000, 10_000)]
    rounds = settings.rounds(full=9, quick=3)
    figures, details = [], {"rounds": rounds, "events_per_series": EVENTS_PER_SERIES,
                            "render_ms": {}, "body_bytes": {}, "gc_collections": {}}
    for n in counts:
        exporter, registry = _ours(n), _theirs(n)
        variants = _variants(exporter, registry)
        samples = interleave({key: _timed(render) for key, render in variants.items()}, rounds)
        details["render_ms"][n] = {k: round(median(v) * 1e3, 2) for k, v in samples.items()}
        details["body_bytes"][n] = {k: _size(render()) for k, render in variants.items()}
        target = "<= 0.1" if n >= 1_000 else None
        for key, label in (("text", "text"), ("openmetrics", "OpenMetrics"),
                           ("before", "prometheus_client path (before)")):
            ratios = paired_ratios(samples, key, "generate_latest")
            figures.append(figure(
                NAME, f"{n:,} series, {label}: render / generate_latest", median(ratios), "x",
                target=None if key == "before" else target, noise=spread(ratios),
                note=f"{median(samples[key]) * 1e3:.1f} ms vs "
                     f"{median(samples['generate_latest']) * 1e3:.1f} ms"))
        if n == counts[-1]:
            gcs = {key: _collections(variants[key]) for key in ("text", "openmetrics", "before")}
            details["gc_collections"] = {"renders": GC_RENDERS, "series": n, **gcs}
            for key, label in (("openmetrics", "OpenMetrics"), ("before", "before")):
                figures.append(figure(
                    NAME, f"full collections per {n:,}-series render, {label}",
                    gcs[key][2] / GC_RENDERS, "", target="== 0" if key != "before" else None,
                    note=f"per render: {gcs[key][0] / GC_RENDERS:.0f} young, "
                         f"{gcs[key][1] / GC_RENDERS:.0f} middle"))
        del exporter, registry, variants
    return Result(NAME, TITLE, figures, details)
