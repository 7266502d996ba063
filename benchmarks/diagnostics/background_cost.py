"""Where the metrics pipeline's own threads spend CPU: per thread, and per periodic action.

    python benchmarks/diagnostics/background_cost.py        # ~3 minutes on 2 cores
    python benchmarks/diagnostics/background_cost.py --only actions --rounds 15
    python benchmarks/diagnostics/background_cost.py --baseline /tmp/base  # before/after

The pipeline is the overhead benchmark's metrics-only one (``Context.config()``):
Prometheus, OTLP metrics to a discarding rotel agent (a closed port without rotel),
StatsD to a bound socket nobody reads, the built-in alerts; default intervals.

* **threads**: the reference orchestrator runs for ``--seconds`` with ~1 ms of CPU per
  agent operation (``burn_1ms``), paced to ``--rate`` events per second; every thread
  the pipeline started is read from ``/proc/self/task/<tid>/schedstat`` (nanoseconds)
  each second and reported by name, in ms per second of lifetime and ms per action
  (the exporter's export count), with the CPU of each busy second and the share of
  one core of all of them together: the overhead benchmark's "own threads" figure.
* **actions**: the timers are set far out, and per round one interval's worth of
  events (``--rate`` x the interval) is sent at full speed, then each periodic action
  (OTLP metrics export, StatsD flush, alert evaluation) is called on this thread and
  timed with ``thread_time``; the median of ``--rounds`` rounds is reported.

With ``--baseline DIR`` (another checkout, e.g. ``git archive main | tar -x -C DIR``)
each measurement runs in child processes, alternately on DIR's code and on this
checkout's, the order rotating every round; both medians and their ratio are printed.
The receivers are started once and shared. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[2]
#: Seconds between an exporter's actions in the default config.
INTERVALS = {"otlp-metrics": 10.0, "telemetry-statsd": 10.0, "telemetry-alerts": 15.0}
FAR = 3600.0  # timers that never fire during an actions run


def thread_cpu_ms(thread_id: int) -> float:
    try:
        with open(f"/proc/self/task/{thread_id}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0  # the thread ended


def _config(endpoint: str, statsd_port: int, far: bool) -> dict[str, Any]:
    from benchmarks.harness import pipeline_config

    config = pipeline_config(otlp_endpoint=endpoint, statsd_port=statsd_port)
    if far:
        config["exporters"]["otlp"]["interval_s"] = FAR
        config["exporters"]["statsd"]["flush_interval_s"] = FAR
        config["alerting"] = {"evaluation_interval_s": FAR}
    return config


def _actions_done(telemetry: Any) -> dict[str, int]:
    exporters = telemetry.exporters
    done = {"otlp-metrics": exporters["otlp"].status.exports,
            "telemetry-statsd": exporters["statsd"].status.exports}
    if telemetry.alerting is not None:
        done["telemetry-alerts"] = telemetry.alerting.evaluations
    return done


def measure_threads(endpoint: str, statsd_port: int, seconds: float,
                    rate: float) -> dict[str, Any]:
    """Per-thread CPU of a pipeline receiving the reference workflow for ``seconds``,
    paced to ``rate`` events per second."""
    from benchmarks.harness import burn_1ms, start_telemetry
    from telemetry.cli.simulator import ReferenceOrchestrator

    burn_1ms()  # calibrate before the pipeline starts
    before = {thread.native_id for thread in threading.enumerate()}
    telemetry = start_telemetry(_config(endpoint, statsd_port, far=False))
    threads = {t.native_id: t.name for t in threading.enumerate() if t.native_id not in before}
    started_cpu = {tid: thread_cpu_ms(tid) for tid in threads}
    started = time.perf_counter()
    orchestrator = ReferenceOrchestrator(seed=11, work=burn_1ms, events_per_s=rate)
    trail: dict[int, list[float]] = {tid: [] for tid in threads}  # CPU ms per second
    try:
        last = dict(started_cpu)
        while time.perf_counter() - started < seconds:
            orchestrator.run(duration_s=min(1.0, seconds - (time.perf_counter() - started)))
            for tid in threads:
                now = thread_cpu_ms(tid)
                trail[tid].append(now - last[tid])
                last[tid] = now
        lifetime = time.perf_counter() - started
        used = {tid: thread_cpu_ms(tid) - cpu for tid, cpu in started_cpu.items()}
        done = _actions_done(telemetry)
    finally:
        telemetry.stop()
    by_name: dict[str, float] = {}
    busy: dict[str, list[float]] = {}
    for tid, name in threads.items():
        by_name[name] = by_name.get(name, 0.0) + used[tid]
        busy.setdefault(name, []).extend(ms for ms in trail[tid] if ms > 0.05)
    rows = {name: {"ms": ms, "ms_per_s": ms / lifetime, "actions": done.get(name),
                   "ms_per_action": ms / done[name] if done.get(name) else None,
                   "busy_seconds_ms": [round(ms, 2) for ms in busy[name]]}
            for name, ms in sorted(by_name.items())}
    total = sum(by_name.values())
    return {"lifetime_s": lifetime, "events": orchestrator.stats.events, "threads": rows,
            "total_ms": total, "share_of_one_core_percent": total / lifetime / 10.0}


def measure_actions(endpoint: str, statsd_port: int, rounds: int, rate: float) -> dict[str, Any]:
    """Median CPU ms of each periodic action after one interval's worth of events."""
    from benchmarks.harness import start_telemetry
    from telemetry.cli.simulator import ReferenceOrchestrator

    telemetry = start_telemetry(_config(endpoint, statsd_port, far=True))
    otlp, statsd = telemetry.exporters["otlp"], telemetry.exporters["statsd"]
    alerts = telemetry.alerting
    actions = {"otlp_export": otlp.export_metrics, "statsd_flush": statsd.flush}
    if alerts is not None:
        actions["alert_evaluation"] = alerts.evaluate
    samples: dict[str, list[float]] = {name: [] for name in actions}
    lines: list[int] = []
    orchestrator = ReferenceOrchestrator(seed=11)
    events = int(rate * INTERVALS["telemetry-statsd"])
    try:
        for number in range(rounds + 1):  # the first round warms up: imports, connections
            target = orchestrator.stats.events + events
            while orchestrator.stats.events < target:
                orchestrator.run_workflow()
            sent_before = statsd.lines_sent
            for name, action in actions.items():
                cpu = time.thread_time()
                action()
                took = (time.thread_time() - cpu) * 1e3
                if number:
                    samples[name].append(took)
            if number:
                lines.append(statsd.lines_sent - sent_before)
        failing = {name: e.status.state for name, e in telemetry.exporters.items()
                   if e.status.state == "failing"}
    finally:
        telemetry.stop()
    return {"events_per_round": events, "rounds": rounds, "failing": failing,
            "statsd_lines_per_flush": statistics.median(lines),
            "ms": {name: statistics.median(values) for name, values in samples.items()}}


# -- before/after in child processes -----------------------------------------------

def _child(code: Path, args: argparse.Namespace, what: str, endpoint: str,
           port: int) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", what,
               "--code", str(code), "--otlp-endpoint", endpoint, "--statsd-port", str(port),
               "--seconds", str(args.seconds), "--rounds", str(args.rounds),
               "--rate", str(args.rate)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=code)
    if done.returncode:
        raise RuntimeError(f"{what} on {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace, endpoint: str, port: int) -> dict[str, Any]:
    variants = {"before": Path(args.baseline).resolve(), "after": HERE}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for what, repeats in (("actions", args.repeats), ("threads", args.thread_repeats)):
        if args.only and what != args.only:
            continue
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        for number in range(repeats):
            order = list(variants) if number % 2 == 0 else list(variants)[::-1]
            for name in order:
                runs[name].append(_child(variants[name], args, what, endpoint, port))
                print(f"  {what} round {number + 1}/{repeats} {name} done", file=sys.stderr)
        results[what] = runs
    return results


def _print_compare(results: dict[str, Any]) -> None:
    if "actions" in results:
        runs = results["actions"]
        print("periodic actions, CPU ms each (median of per-child medians):")
        for action in runs["after"][0]["ms"]:
            before = statistics.median(run["ms"][action] for run in runs["before"])
            after = statistics.median(run["ms"][action] for run in runs["after"])
            print(f"  {action:18} before {before:8.3f}  after {after:8.3f}  "
                  f"after/before {after / before:6.3f}")
    if "threads" in results:
        runs = results["threads"]
        print("own threads, ms per second of lifetime (median over runs):")
        names = sorted({name for run in runs["before"] + runs["after"] for name in run["threads"]})
        for name in names:
            values = {variant: statistics.median(run["threads"].get(name, {"ms_per_s": 0.0})
                                                 ["ms_per_s"] for run in runs[variant])
                      for variant in ("before", "after")}
            print(f"  {name:22} before {values['before']:7.4f}  after {values['after']:7.4f}")
        for variant in ("before", "after"):
            share = statistics.median(r["share_of_one_core_percent"] for r in runs[variant])
            print(f"  all threads, {variant}: {share:.4f} % of one core")


def _print_threads(result: dict[str, Any]) -> None:
    print(f"own threads over {result['lifetime_s']:.1f} s ({result['events']} events):")
    for name, row in result["threads"].items():
        per_action = (f"{row['ms_per_action']:.2f} ms per action ({row['actions']})"
                      if row["ms_per_action"] is not None else "")
        print(f"  {name:22} {row['ms']:8.2f} ms  {row['ms_per_s']:7.4f} ms/s  {per_action}")
        if row["busy_seconds_ms"]:
            print(f"  {'':22} CPU ms of each busy second: {row['busy_seconds_ms']}")
    print(f"  all: {result['share_of_one_core_percent']:.4f} % of one core")


def _print_actions(result: dict[str, Any]) -> None:
    print(f"periodic actions after {result['events_per_round']} events "
          f"(median of {result['rounds']}; {result['statsd_lines_per_flush']} StatsD lines"
          f"{'; FAILING: ' + str(result['failing']) if result['failing'] else ''}):")
    for name, ms in result["ms"].items():
        print(f"  {name:18} {ms:8.3f} ms CPU")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("threads", "actions"))
    parser.add_argument("--seconds", type=float, default=62.0, help="threads: run length")
    parser.add_argument("--rounds", type=int, default=10, help="actions: rounds per process")
    parser.add_argument("--rate", type=float, default=1230.0,
                        help="events per second (the overhead benchmark's metrics pipeline "
                             "receives ~80,000 events over its ~65 s)")
    parser.add_argument("--baseline", help="a checkout to compare with, in child processes")
    parser.add_argument("--repeats", type=int, default=6, help="compare: actions processes each")
    parser.add_argument("--thread-repeats", type=int, default=2,
                        help="compare: threads processes each")
    parser.add_argument("--receivers", default="auto", choices=("auto", "real", "closed"))
    parser.add_argument("--child", choices=("threads", "actions"), help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--otlp-endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--statsd-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.code).resolve() if args.code else HERE))
    if args.child:
        measure = (measure_threads(args.otlp_endpoint, args.statsd_port, args.seconds, args.rate)
                   if args.child == "threads" else
                   measure_actions(args.otlp_endpoint, args.statsd_port, args.rounds, args.rate))
        print(json.dumps(measure))
        return 0
    from benchmarks.receivers import receivers

    with receivers(args.receivers) as found:
        print(f"OTLP to {found.otlp_kind} {found.otlp_endpoint}; StatsD to an unread socket",
              file=sys.stderr)
        if args.baseline:
            _print_compare(compare(args, found.otlp_endpoint, found.statsd_port))
            return 0
        if args.only in (None, "actions"):
            _print_actions(measure_actions(found.otlp_endpoint, found.statsd_port, args.rounds,
                                           args.rate))
        if args.only in (None, "threads"):
            _print_threads(measure_threads(found.otlp_endpoint, found.statsd_port, args.seconds,
                                           args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
