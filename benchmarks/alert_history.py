"""The in-process alert evaluator at 10,000 handoff series, with the built-in alerts.

An aggregator holds 10,000 label sets of the handoff counter and histogram; between
two evaluations a tenth of them receive a handoff (15 s apart on the evaluator's
clock, so the ring reaches its steady state: the 5-minute windows' 22 samples).
Two histories run the same alerts in the same process, one after the other:

* **summed views** (the evaluator's own): each windowed expression's rows, summed
  over the labels it sums away, unchanged rows shared;
* **every series** (the baseline, the design before it): a copy of every series of
  every windowed metric at every sample, from ``Aggregator.collect()``.

Per history: the CPU of one evaluation (collection included; the median of the last
ten), the memory it holds in its steady state (traced with tracemalloc in a second
pass, so that tracing does not slow the timed one) and the objects the garbage
collector tracks for it, each per series; and the time of a full collection then.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import blinker

from benchmarks.harness import Context, Result, figure, median
from telemetry.aggregation.aggregator import Aggregator
from telemetry.alerting.builtins import DEFAULT_ALERTS
from telemetry.alerting.evaluator import AlertEvaluator
from telemetry.alerting.query import SampleRing, breaching

NAME = "alert_history"
TITLE = "alert evaluation at 10,000 handoff series: memory and CPU"
INTERVAL_S = 15.0
KIB = 1024


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _aggregator(series: int) -> Aggregator:
    aggregator = Aggregator(max_series=2 * series)
    aggregator.connect()
    send = blinker.signal("yolo.handoff_completed").send
    for index in range(series):
        send(None, from_agent=f"agent-{index:05d}", to_agent="dev", duration_s=0.3)
    return aggregator


def _traffic(series: int, rng: random.Random) -> Callable[[], None]:
    send = blinker.signal("yolo.handoff_completed").send

    def some_handoffs() -> None:
        for _ in range(max(series // 10, 1)):
            send(None, from_agent=f"agent-{rng.randrange(series):05d}", to_agent="dev",
                 duration_s=rng.choice((0.3, 2.0, 7.0, 40.0)))
    return some_handoffs


def _summed_views(aggregator: Aggregator, clock: _Clock) -> tuple[Any, Callable[[], None]]:
    evaluator = AlertEvaluator(DEFAULT_ALERTS, aggregator, interval_s=INTERVAL_S, clock=clock)
    return evaluator, evaluator.evaluate


def _every_series(aggregator: Aggregator, clock: _Clock) -> tuple[Any, Callable[[], None]]:
    """The previous design: the ring copies every series of each windowed metric."""
    shape = AlertEvaluator(DEFAULT_ALERTS, aggregator, interval_s=INTERVAL_S, clock=clock)
    ring = SampleRing(shape.ring.retention_s, shape.ring.max_samples,
                      windowed=shape.ring.windowed,
                      retention_by_spec=shape.ring.retention_by_spec)
    specs = list(shape._specs)

    def evaluate() -> None:
        now = clock()
        ring.add(now, aggregator.collect(specs), time.time())
        for alert in DEFAULT_ALERTS:
            breaching(alert, ring, now)
    return ring, evaluate


def _run(series: int, evaluations: int, make: Callable, *, traced: bool) -> dict[str, float]:
    aggregator = _aggregator(series)
    clock, rng = _Clock(), random.Random(11)
    traffic = _traffic(series, rng)
    gc.collect()
    objects_before = len(gc.get_objects())
    if traced:
        tracemalloc.start()
    memory_before = tracemalloc.get_traced_memory()[0] if traced else 0
    held, evaluate = make(aggregator, clock)
    cpu = []
    try:
        for _ in range(evaluations):
            traffic()
            started = time.thread_time()
            evaluate()
            cpu.append(time.thread_time() - started)
            clock.now += INTERVAL_S
        gc.collect()
        memory = tracemalloc.get_traced_memory()[0] - memory_before if traced else 0
    finally:
        if traced:
            tracemalloc.stop()
    objects = len(gc.get_objects()) - objects_before
    started = time.perf_counter()
    gc.collect()
    full_gc = time.perf_counter() - started
    aggregator.disconnect()
    del held
    return {"cpu_s": median(cpu[-10:]), "memory_bytes": memory, "objects": objects,
            "full_gc_s": full_gc}


def run(ctx: Context) -> Result:
    settings = ctx.settings
    series = settings.count(full=10_000, quick=2_000, minimum=50)
    # The 5-minute windows' ring fills after 22 samples; a few more show it stays put.
    evaluations = settings.count(full=26, quick=26, minimum=26)
    found: dict[str, dict[str, float]] = {}
    for name, make in (("summed views", _summed_views), ("every series", _every_series)):
        timed = _run(series, evaluations, make, traced=False)
        timed["memory_bytes"] = _run(series, evaluations, make, traced=True)["memory_bytes"]
        found[name] = timed
    ours, before = found["summed views"], found["every series"]
    label = f"{series:,} series"
    figures = [
        figure(NAME, f"summed views: memory per series ({label})",
               ours["memory_bytes"] / series, "B", target="<= 2048",
               note=f"every series: {before['memory_bytes'] / series:,.0f} B; "
                    f"{ours['memory_bytes'] / 2**20:.1f} vs "
                    f"{before['memory_bytes'] / 2**20:.1f} MiB in all"),
        figure(NAME, f"summed views / every series: CPU per evaluation ({label})",
               ours["cpu_s"] / before["cpu_s"], "x", target="<= 0.1",
               note=f"{ours['cpu_s'] * 1e3:.1f} vs {before['cpu_s'] * 1e3:.1f} ms"),
        figure(NAME, f"summed views: GC-tracked objects per series ({label})",
               ours["objects"] / series, "objects",
               note=f"informative; every series: {before['objects'] / series:.1f}"),
        figure(NAME, f"summed views / every series: full collection ({label})",
               ours["full_gc_s"] / before["full_gc_s"], "x",
               note=f"informative: {ours['full_gc_s'] * 1e3:.0f} vs "
                    f"{before['full_gc_s'] * 1e3:.0f} ms"),
    ]
    details = {"series": series, "evaluations": evaluations,
               "handoffs_between_evaluations": max(series // 10, 1),
               "histories": {name: {key: round(value, 6) for key, value in numbers.items()}
                             for name, numbers in found.items()}}
    return Result(NAME, TITLE, figures, details)
