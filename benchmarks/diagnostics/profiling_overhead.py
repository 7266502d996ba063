"""What profiling costs:
``python benchmarks/diagnostics/profiling_overhead.py [--quick] [--json FILE]``.

Measures, over several interleaved repetitions (the minimum for per-call costs,
the median for throughput):

1. ``profiled()``: the cost of one decorated call and one ``with`` block, minus the
   same call undecorated, with telemetry running (and with none running).
2. The per-event cost that ``debug.enabled`` and ``debug.slow.enabled`` add (the
   thread registry and slow-capture listener), against telemetry with debug off.
3. The slow-operation sampler: its own busy time per round and its share of one
   CPU at the default 20 samples a second.
4. ``/debug/profile`` at the default 100 samples a second: the sampler's own CPU
   share, and the orchestrator's throughput (reference workflow, ~1 ms of CPU work per agent
   operation) while a profile runs, against the same run without one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import blinker

from telemetry import Telemetry, load_config, profiled
from telemetry.cli.simulator import ReferenceOrchestrator


def start(debug: dict | None = None) -> Telemetry:
    data = {"server": {"port": 0}, "exporters": {"prometheus": {"enabled": True}}}
    if debug is not None:
        data["debug"] = debug
    return Telemetry(load_config(data, environ={})).start()


def per_call_ns(fn: Callable[[], object], calls: int) -> float:
    """CPU time of this thread per call: steadier than wall time on a shared machine."""
    started = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - started) / calls * 1e9


def best_of(runs: int, measure: Callable[[], float]) -> float:
    """The minimum, as timeit advises: noise only ever adds time."""
    return min(measure() for _ in range(runs))


def bench_profiled(calls: int, runs: int) -> dict[str, float]:
    def plain() -> None:
        return None

    decorated = profiled("bench")(plain)
    block = profiled("bench_block")

    def with_block() -> None:
        with block:
            pass

    results = {}
    results["decorator_ns_no_telemetry"] = best_of(
        runs, lambda: per_call_ns(decorated, calls) - per_call_ns(plain, calls))
    tel = start()
    try:
        results["decorator_ns"] = best_of(
            runs, lambda: per_call_ns(decorated, calls) - per_call_ns(plain, calls))
        results["with_block_ns"] = best_of(
            runs, lambda: per_call_ns(with_block, calls) - per_call_ns(plain, calls))
    finally:
        tel.stop()
    return results


def bench_event_cost(events: int, runs: int) -> dict[str, float]:
    signal = blinker.signal("yolo.handoff_completed")

    def send_events() -> float:
        return per_call_ns(
            lambda: signal.send(None, from_agent="pm", to_agent="dev", duration_s=0.01),
            events)

    setups = {"debug_off": None, "debug_on": {"enabled": True},
              "slow_capture_on": {"enabled": True, "slow": {"enabled": True}}}
    samples: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(runs):  # interleaved, so drift hits every setup alike
        for name, debug in setups.items():
            tel = start(debug)
            try:
                samples[name].append(send_events())
            finally:
                tel.stop()
    base = min(samples["debug_off"])
    return {
        "event_ns_debug_off": base,
        "added_ns_debug_on": min(samples["debug_on"]) - base,
        "added_ns_slow_capture_on": min(samples["slow_capture_on"]) - base,
    }


def burn() -> None:
    total = 0
    for i in range(12_000):  # about 1 ms of CPU on the reference machine
        total += i * i


def orchestrator_rate(seconds: float, during: Callable[[], None] | None) -> tuple[float, float]:
    """Agent operations of the reference orchestrator per wall second and per CPU
    second of its own thread, over ``seconds`` (or while ``during`` runs).

    The CPU figure is the steadier one on a shared machine: other processes slow
    the wall clock, not the thread's own CPU time per operation.
    """
    stop = threading.Event()
    calls = [0]

    def work() -> None:
        calls[0] += 1
        burn()

    orchestrator = ReferenceOrchestrator(seed=3, work=work, stop_event=stop)
    worker = threading.Thread(target=orchestrator.run, name="reference-orchestrator")
    worker.start()
    time.sleep(0.2)
    clock = time.pthread_getcpuclockid(worker.ident)
    before, started, cpu_started = calls[0], time.perf_counter(), time.clock_gettime(clock)
    if during is not None:
        during()
    else:
        time.sleep(seconds)
    done = calls[0] - before
    cpu = time.clock_gettime(clock) - cpu_started
    rate = done / (time.perf_counter() - started)
    stop.set()
    worker.join()
    return rate, done / cpu


def bench_sampler(seconds: float, runs: int) -> dict[str, float]:
    tel = start({"enabled": True, "slow": {"enabled": True}})
    try:
        sampler = tel.profiling.slow.sampler
        rounds_before, busy_before = sampler.rounds, sampler.busy_s
        orchestrator_rate(seconds, None)
        rounds = sampler.rounds - rounds_before
        per_round_us = (sampler.busy_s - busy_before) / max(rounds, 1) * 1e6

        profiling = tel.profiling
        profiles = []
        with_profile, without = [], []
        for _ in range(runs):  # interleaved: this machine's speed drifts
            without.append(orchestrator_rate(seconds, None))
            with_profile.append(orchestrator_rate(
                seconds, lambda: profiles.append(profiling.profile(seconds))))
        rounds_per_s = statistics.median(
            len(p.threads[0].stacks) / p.duration_s for p in profiles)
        wall = [statistics.median(r[0] for r in rates) for rates in (without, with_profile)]
        cpu = [statistics.median(r[1] for r in rates) for rates in (without, with_profile)]
        return {
            "slow_sampler_round_us": per_round_us,
            "slow_sampler_cpu_share": per_round_us * 1e-6 / sampler.interval_s,
            "profile_samples_per_s": rounds_per_s,
            "profile_threads": statistics.median(len(p.threads) for p in profiles),
            "profile_sampler_cpu_share": statistics.median(
                p.sampler_cpu_s / p.duration_s for p in profiles),
            "ops_per_s_without_profile": wall[0],
            "ops_per_s_during_profile": wall[1],
            "ops_per_cpu_s_without_profile": cpu[0],
            "ops_per_cpu_s_during_profile": cpu[1],
            "profile_cpu_cost_per_op": 1 - cpu[1] / cpu[0],
        }
    finally:
        tel.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, to prove it runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    calls, events, runs, seconds = ((20_000, 20_000, 3, 0.5) if args.quick
                                    else (200_000, 100_000, 7, 2.0))
    figures = {**bench_profiled(calls, runs), **bench_event_cost(events, runs),
               **bench_sampler(seconds, runs)}
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:12.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
