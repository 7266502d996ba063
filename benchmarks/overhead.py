"""Overhead on the reference workflow, where every agent operation does ~1 ms of CPU.

Each round runs the same seeded workflow (its decisions and handoffs each call
:func:`~benchmarks.harness.burn_1ms`) without telemetry, with telemetry (metrics
only), with telemetry tracing every handoff and decision at sampling 1.0 (once a
tracer exists), and without telemetry again; the order rotates every round.

The pipelines are started once and warmed up, and receive signals only during their
own runs: "without" sends to signals nobody receives, and the figure is the steady
state, not the cost of starting (which a long-running orchestrator pays once).
Every run is timed twice: wall time, and the CPU time of the sending thread, which a
busy neighbour on a shared machine disturbs far less. The two "without" runs of a
round give the noise floor: a baseline against itself.

Exporters and the span worker work on their own threads. Their CPU is measured
in a steady phase after the rounds: per pipeline, the workflow with its work runs
back to back for a while (a warm-up first, so each timer's interval holds the
workflow's own event rate), and the CPU of every thread the pipeline's start created
is read. The timer threads (exporters, server, alerts) work on their clocks: their
CPU over the sending thread's. Span export grows with the spans: its CPU per event,
scaled to a workflow. Measured while the pipeline receives at the workflow's rate,
neither is diluted by the time the pipeline spends idle between its runs (a StatsD
flush's values, for one, grow with the events of its interval). A shared host's
speed drifts over minutes, so that phase's warm-up times its own burns and rescales
them to 1 ms, and the note states what an operation took in the measured part.

The work per operation is 1 ms on any host, so telemetry's share grows as the host
slows. Each run measures this host's bare blinker send (a variant of the runs without
work, so it is read while the in-line cost is) and also states the in-line +
own-threads share as it would be on a host whose bare send is
:data:`SLOW_HOST_BARE_SEND_US` (the slowest of our machine class the targets must
hold on): a fast host cannot meet a target that a slow one misses.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from benchmarks.harness import (
    HANDOFF,
    Context,
    Figure,
    Result,
    bare_signals,
    burn_1ms,
    burn_loops,
    dropped,
    figure,
    interleave,
    listener_count,
    median,
    repeat,
    rescale_burn,
    spread,
    start_telemetry,
    time_loop,
    timed_burn,
)

NAME = "overhead"
TITLE = "reference workflow (1 ms CPU per operation): time with / without telemetry"
SEED = 11

#: The bare blinker send (one no-op receiver) of the slowest host of our machine class
#: the targets must hold on. The work per operation is 1 ms whatever the host, so the
#: in-line share grows as the host slows: each run also states its share as it would
#: be on such a host, scaled by this host's bare send.
SLOW_HOST_BARE_SEND_US = 2.4


#: The span batch worker's thread name: its CPU exists because of the traced events.
SPAN_WORKER = "yolo-span-export"


class Pipeline:
    """A started pipeline and its threads: the span worker (every span is encoded
    and sent there) and the rest (exporters, server, alerts), reported apart."""

    def __init__(self, config: dict[str, Any]) -> None:
        before = {thread.native_id for thread in threading.enumerate()}
        self.telemetry = start_telemetry(config, receiving=False)
        started = [thread for thread in threading.enumerate() if thread.native_id not in before]
        self.span_worker_ids = {thread.native_id for thread in started
                                if thread.name == SPAN_WORKER}
        self.timer_thread_ids = {thread.native_id for thread in started} - self.span_worker_ids

    def threads_cpu(self) -> tuple[float, float]:
        """(CPU seconds of the timer threads, of the span worker) so far."""
        return (sum(map(_thread_cpu_seconds, self.timer_thread_ids)),
                sum(map(_thread_cpu_seconds, self.span_worker_ids)))

    def flush_spans(self) -> float:
        """Export the queued spans on this thread; the CPU seconds it took.

        The runs without work send spans faster than the worker gets the GIL to
        export them; flushing after each keeps the queue from overflowing.
        """
        otlp = self.telemetry.exporters.get("otlp")
        provider = getattr(otlp, "tracer_provider", None)
        if provider is None:
            return 0.0
        started = time.thread_time()
        provider.force_flush(30_000)
        return time.thread_time() - started

    def steady(self, warm_up_s: float, seconds: float) -> dict[str, float]:
        """Run the workflow with its work back to back, ``warm_up_s`` and then
        ``seconds`` measured: the CPU seconds of the timer threads, of span export
        (the worker, and a flush of what is left queued at the end, on this thread)
        and of the sending thread in the measured part, and its events.

        The warm-up times its burns and rescales them to 1 ms for the measured part:
        the timer threads' share is of the sending thread's CPU at this rate."""
        from telemetry.cli.simulator import ReferenceOrchestrator

        aggregator = self.telemetry.aggregator
        aggregator.connect()
        try:
            events, timers, spans, sending = 0, 0.0, 0.0, 0.0
            spent = [0.0, 0]
            for duration, work in ((warm_up_s, timed_burn(spent)), (seconds, burn_1ms)):
                if work is burn_1ms and spent[1]:
                    rescale_burn(spent[0] / spent[1])
                timers, spans = self.threads_cpu()  # the counts of the last part stay
                started, sending, events = time.perf_counter(), time.thread_time(), 0
                while time.perf_counter() - started < duration:
                    orchestrator = ReferenceOrchestrator(seed=SEED, work=work)
                    orchestrator.run(workflows=1)
                    events += orchestrator.stats.events
            aggregator.run_pending()
            sending = time.thread_time() - sending
            flushed = self.flush_spans()
            timers_now, spans_now = self.threads_cpu()
        finally:
            aggregator.disconnect()
        return {"timer_threads_s": timers_now - timers,
                "span_export_s": spans_now - spans + flushed, "sending_thread_s": sending,
                "events": events}


def _thread_cpu_seconds(thread_id: int) -> float:
    """CPU time of one live thread of this process (0 once it has ended).

    Linux's schedstat counts nanoseconds; psutil's per-thread times come in clock
    ticks (10 ms), which over a minute's run can misstate a quiet thread's share
    by a tenth of a percent, more than the effect measured.
    """
    try:
        with open(f"/proc/self/task/{thread_id}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        for thread in psutil.Process().threads():
            if thread.id == thread_id:
                return thread.user_time + thread.system_time
        return 0.0


def _workflow_runner(pipeline: Pipeline | None, repeats: int,
                     seen: dict[str, Any]) -> tuple[Callable[[], float], list[float]]:
    """A variant measuring wall time (returned) and thread CPU time (appended)."""
    from telemetry.cli.simulator import ReferenceOrchestrator

    cpu_samples: list[float] = []

    def once() -> float:
        best_wall = best_cpu = float("inf")
        gc.collect()
        for _ in range(repeats):
            orchestrator = ReferenceOrchestrator(seed=SEED, work=burn_1ms)
            if pipeline is not None:
                pipeline.telemetry.aggregator.connect()
            wall, cpu = time.perf_counter(), time.thread_time()
            orchestrator.run(workflows=1)
            if pipeline is not None:  # what is queued is the run's to record
                pipeline.telemetry.aggregator.run_pending()
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            if pipeline is not None:
                pipeline.telemetry.aggregator.disconnect()
            best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
            seen["events_sent"] = seen.get("events_sent", 0) + orchestrator.stats.events
        cpu_samples.append(best_cpu)
        return best_wall
    return once, cpu_samples


def _fast_runner(pipeline: Pipeline | None, workflows: int) -> Callable[[], float]:
    """Thread CPU seconds per workflow of ``workflows`` workflows without the 1 ms work:
    nearly all telemetry and simulator, so the in-line cost stands far above the noise."""
    from telemetry.cli.simulator import ReferenceOrchestrator

    def once() -> float:
        orchestrator = ReferenceOrchestrator(seed=SEED)
        if pipeline is not None:
            pipeline.telemetry.aggregator.connect()
        started = time.thread_time()
        orchestrator.run(workflows=workflows)
        if pipeline is not None:  # what is queued is the run's to record
            pipeline.telemetry.aggregator.run_pending()
        took = time.thread_time() - started
        if pipeline is not None:
            pipeline.telemetry.aggregator.disconnect()
            pipeline.flush_spans()
        return took / workflows
    return once


def _bare_sender(count: int) -> Callable[[], float]:
    """Seconds per bare blinker send of the handoff payload (the per_event baseline),
    timed over ``count`` sends: a variant of the runs without work, so that this host's
    speed is read while the in-line cost it scales is measured."""
    signal = bare_signals([HANDOFF[0]])[HANDOFF[0]]
    body = repeat(signal, HANDOFF[1])
    return lambda: time_loop(body, count)


def _operations_per_workflow() -> int:
    """Agent operations (calls of the work function) in the seeded workflow."""
    from telemetry.cli.simulator import ReferenceOrchestrator

    calls = []
    ReferenceOrchestrator(seed=SEED, work=lambda: calls.append(1)).run(workflows=1)
    return len(calls)


def _overhead(samples: list[float], first: list[float], second: list[float]) -> list[float]:
    """Per-round ratios against the mean of the round's two baselines."""
    return [s / ((a + b) / 2) for s, a, b in zip(samples, first, second, strict=True)]


def _percent(ratios: list[float]) -> tuple[float, float]:
    return (median(ratios) - 1.0) * 100.0, spread(ratios) * 100.0


def run(ctx: Context) -> Result:
    settings = ctx.settings
    rounds = settings.rounds(full=150, quick=6)
    fast_rounds = settings.rounds(full=31, quick=5)
    fast_workflows = settings.count(full=20, quick=5)
    repeats = 3 if not settings.quick else 1
    burn_1ms()  # calibrate before anything is timed
    operations = _operations_per_workflow()
    pipelines = {"with_metrics": Pipeline(ctx.config())}
    if ctx.tracing:
        pipelines["with_tracing"] = Pipeline(ctx.config(tracing=True))
    seen: dict[str, dict[str, Any]] = {name: {} for name in ("without", "without_again",
                                                              *pipelines)}
    variants, cpu = {}, {}
    for name in ("without", "with_metrics", "without_again", "with_tracing"):
        if name.startswith("with_") and name not in pipelines:
            continue
        variants[name], cpu[name] = _workflow_runner(pipelines.get(name), repeats, seen[name])
    try:
        for pipeline in pipelines.values():  # warm up: every cell exists before timing
            pipeline.telemetry.aggregator.connect()
            from telemetry.cli.simulator import ReferenceOrchestrator
            ReferenceOrchestrator(seed=SEED).run(workflows=3)
            pipeline.telemetry.aggregator.disconnect()
        wall = interleave(variants, rounds)
        fast = interleave({"without": _fast_runner(None, fast_workflows),
                           **{name: _fast_runner(p, fast_workflows)
                              for name, p in pipelines.items()},
                           "bare_send": _bare_sender(settings.count(full=20_000, quick=5_000))},
                          fast_rounds)
        for values in cpu.values():
            del values[0]  # the warm-up round interleave discarded
        for pipeline in pipelines.values():
            pipeline.flush_spans()
        # The measured part holds whole intervals of every timer (10 s, alerts 15 s).
        warm_up_s, steady_s = (2.0, 3.0) if settings.quick else (10.0, 60.0)
        steady = {name: p.steady(warm_up_s, steady_s) for name, p in pipelines.items()}
        counted = {name: p.telemetry.snapshot()[1].events_total for name, p in pipelines.items()}
        drops = {name: dropped(p.telemetry) for name, p in pipelines.items()}
        listeners = {name: listener_count(p.telemetry) for name, p in pipelines.items()}
    finally:
        for pipeline in pipelines.values():
            pipeline.telemetry.stop()

    events_per_workflow = seen["without"]["events_sent"] / (rounds + 1) / repeats
    bare_us = median(fast["bare_send"]) * 1e6
    slow_host = max(1.0, SLOW_HOST_BARE_SEND_US / bare_us)
    figures: list[Figure] = []
    # What an operation's work really cost in the runs (calibration on a busy
    # machine can be off): the workflow's CPU less its CPU without the work.
    ms_per_operation = ((median(cpu["without"] + cpu["without_again"]) - median(fast["without"]))
                        / operations * 1e3)
    # The derived shares are of the reference workflow: exactly 1 ms of work per
    # operation, plus the workflow's own CPU without it. A calibration that made
    # the work longer (or shorter) would otherwise shrink (or grow) every share.
    workflow_cpu = median(fast["without"]) + operations * 1e-3
    labels = {"with_metrics": ("metrics only", "< 0.5"),
              "with_tracing": ("traced at 1.0 (every handoff and decision)", "< 2")}
    for name, (label, target) in labels.items():
        if name not in pipelines:
            figures.append(figure(NAME, f"{label}: wall-time overhead", None, "%", target=target,
                                  note="tracing not implemented yet"))
            continue
        value, noise = _percent(_overhead(wall[name], wall["without"], wall["without_again"]))
        note = "" if name == "with_metrics" or listeners[name] else "no tracer hooked in"
        figures.append(figure(NAME, f"{label}: wall-time overhead", value, "%", target=target,
                              noise=noise, note=note))
        value, noise = _percent(_overhead(cpu[name], cpu["without"], cpu["without_again"]))
        figures.append(figure(NAME, f"{label}: CPU-time overhead (sending thread)", value, "%",
                              target=target, noise=noise))
        # The low-noise view: in-line CPU per workflow, measured without the 1 ms work
        # (paired per round), over the CPU time of the reference workflow.
        inline = [w - b for w, b in zip(fast[name], fast["without"], strict=True)]
        figures.append(figure(
            NAME, f"{label}: in-line cost / workflow time (derived)",
            median(inline) / workflow_cpu * 100, "%", target=target,
            noise=spread(inline) / workflow_cpu * 100,
            note=f"{median(inline) * 1e6 / events_per_workflow:.2f} us per event; "
                 f"over 1 ms of work per operation (it took {ms_per_operation:.2f} ms)"))
        inline_share = median(inline) / workflow_cpu * 100
        # Own threads, from the steady phase. The timer threads work on their clocks
        # (a StatsD flush's values are capped per series): their CPU over the sending
        # thread's, at the rate of the work rescaled in the warm-up (what an operation
        # took there is stated). Span export grows with the events: its CPU per event,
        # for a workflow's events, over the reference workflow's CPU time (as the
        # in-line share).
        measured = steady[name]
        workflows_run = max(measured["events"], 1) / events_per_workflow
        steady_ms = ((measured["sending_thread_s"] / workflows_run - median(fast[name]))
                     / operations * 1e3)
        timer_share = measured["timer_threads_s"] / measured["sending_thread_s"] * 100
        span_share = (measured["span_export_s"] / max(measured["events"], 1)
                      * events_per_workflow / workflow_cpu * 100)
        threads_share = timer_share + span_share
        how = f"timer threads {timer_share:.2f} %"
        if measured["span_export_s"]:
            per_span_event = measured["span_export_s"] / max(measured["events"], 1)
            how += f" + span export {span_share:.2f} % ({per_span_event * 1e6:.2f} us per event)"
        how += (f", at the workflow's own rate for {steady_s:.0f} s (an operation took "
                f"{steady_ms:.2f} ms)")
        figures.append(figure(NAME, f"{label}: its own threads' CPU (derived)", threads_share,
                              "%", note=f"informative: {how}"))
        figures.append(figure(NAME, f"{label}: in-line + own threads (derived)",
                              inline_share + threads_share, "%", target=target,
                              note=f"this host's bare blinker send: {bare_us:.2f} us"))
        figures.append(figure(
            NAME, f"{label}: in-line + own threads, on a host whose bare send is "
                  f"{SLOW_HOST_BARE_SEND_US} us (derived)",
            (inline_share + threads_share) * slow_host, "%", target=target,
            note=f"this run's share x {slow_host:.2f} (this host's bare send: "
                 f"{bare_us:.2f} us)" if slow_host > 1 else "this host is that slow or slower"))
    for label, samples in (("wall time", wall), ("CPU time", cpu)):
        value, noise = _percent([b / a for a, b in zip(samples["without"],
                                                      samples["without_again"], strict=True)])
        figures.append(figure(NAME, f"noise floor, {label}: baseline / baseline", value, "%",
                              noise=noise, note="informative"))
    details = {
        "rounds": rounds, "workflows_per_run": 1, "best_of": repeats,
        "burn_loops_per_ms": burn_loops(),
        "operations_per_workflow": operations,
        "bare_send_us": round(bare_us, 4),
        "bare_send_us_rounds": [round(v * 1e6, 4) for v in fast["bare_send"]],
        "cpu_ms_per_operation_measured": round(ms_per_operation, 4),
        "reference_workflow_cpu_ms": round(workflow_cpu * 1e3, 4),
        "wall_ms_per_run": {k: round(median(v) * 1e3, 3) for k, v in wall.items()},
        "cpu_ms_per_run": {k: round(median(v) * 1e3, 3) for k, v in cpu.items()},
        "without_work": {"rounds": fast_rounds, "workflows_per_run": fast_workflows,
                         "cpu_ms_per_workflow": {k: round(median(v) * 1e3, 4)
                                                 for k, v in fast.items()
                                                 if k != "bare_send"}},
        "events_per_workflow": events_per_workflow,
        "events_sent": {k: v.get("events_sent") for k, v in seen.items()},
        "events_counted": counted,
        "per_round_ratios": {
            f"{measure}:{name}": [round(r, 4) for r in _overhead(
                samples[name], samples["without"], samples["without_again"])]
            for measure, samples in (("wall", wall), ("cpu", cpu))
            for name in samples if name.startswith("with")},
        "dropped": drops,
        "steady": {"warm_up_s": warm_up_s, "measured_s": steady_s,
                   **{k: {key: round(value, 4) for key, value in v.items()}
                      for k, v in steady.items()}},
    }
    return Result(NAME, TITLE, figures, details)
