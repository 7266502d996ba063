"""Per-event cost of telemetry with OTLP off, OTLP metrics on, and tracing on.

    python benchmarks/diagnostics/otlp_cost.py                 # ~1 minute on 2 cores
    python benchmarks/diagnostics/otlp_cost.py --workflows 100 --repeats 3 --json out.json

The load is the reference orchestrator at full speed (``time_scale=0``), so the
event mix is a real workflow's. Every configuration runs ``--repeats`` times,
interleaved with the others so drift (CPU frequency, other load) hits all alike;
the median is reported. The cost of telemetry per event is the run time minus the
same run with telemetry not started at all, divided by the number of events.

OTLP goes to a real receiver: rotel, if its package is installed (the script starts
it on loopback ports and stops it), else a closed port (exports then fail in the
background, which is the dead-collector case). The metric interval is long, so the
runs measure the per-event path alone; the cost of one metric export is measured
apart (it is paid once per interval, whatever the event rate). Spans are exported
during the run (batch delay 1 s) with a queue large enough that none is dropped, so
every span is built, encoded and sent: that work grows with the events.

The figure is CPU time of this process (all its threads: the orchestrator's, and
the exporters' background threads that encode and send), so other programs on a
shared machine do not inflate it; wall time is reported beside it. The garbage
collector runs before each timed run, and the order of the configurations is
shuffled each round. Medians are reported; ratios compare telemetry's share.

This is a measurement, not a test: it asserts nothing and prints ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from telemetry import Telemetry, load_config
from telemetry import catalogue as cat
from telemetry.cli.simulator import ReferenceOrchestrator

BASE: dict[str, Any] = {"server": {"enabled": False},
                        "exporters": {"prometheus": {"enabled": False}}}


def configurations(endpoint: str) -> dict[str, dict[str, Any] | None]:
    """Name -> telemetry config (None: telemetry not started, the simulator alone)."""
    def otlp(traces: bool, ratio: float = 1.0) -> dict[str, Any]:
        return {**BASE,
                "exporters": {"prometheus": {"enabled": False},
                              "otlp": {"enabled": True, "endpoint": endpoint,
                                       "interval_s": 3600, "traces": traces, "timeout_s": 2}},
                "tracing": {"sampler_ratio": ratio,
                            "batch": {"max_queue_size": 1 << 20, "schedule_delay_ms": 1000}}}

    return {
        "no telemetry": None,
        "aggregator only (OTLP off)": BASE,
        "OTLP metrics": otlp(traces=False),
        "OTLP metrics + traces, ratio 0": otlp(traces=True, ratio=0.0),
        "OTLP metrics + traces, ratio 0.1": otlp(traces=True, ratio=0.1),
        "OTLP metrics + traces, ratio 1": otlp(traces=True, ratio=1.0),
    }


def one_run(config: dict[str, Any] | None, workflows: int, seed: int) -> dict[str, float]:
    tel = Telemetry(load_config(config, environ={})).start() if config is not None else None
    orchestrator = ReferenceOrchestrator(seed=seed)
    gc.collect()
    started, cpu_started = time.perf_counter(), time.process_time()
    orchestrator.run(workflows=workflows)
    if tel is not None and getattr(tel.exporters.get("otlp"), "tracer", None) is not None:
        tel.exporters["otlp"].flush(30)  # sending the spans is part of their cost (this
        # also makes one metric export: ~0.2 us per event of a run, see "export ms")
    elapsed = time.perf_counter() - started
    result = {"seconds": elapsed, "cpu": time.process_time() - cpu_started,
              "events": orchestrator.stats.events}
    if tel is not None:
        otlp = tel.exporters.get("otlp")
        if otlp is not None and otlp.config.metrics:
            result["export_ms"] = time_exports(otlp)
        tel.stop()
        dropped = sum(s.value for f in tel.aggregator.collect([cat.DROPPED]) for s in f.samples)
        result["dropped"] = dropped
    return result


def time_exports(otlp: Any, times: int = 5) -> float:
    """Median milliseconds of one metric export (collect, translate, encode, send)."""
    durations = []
    for _ in range(times):
        started = time.perf_counter()
        otlp.export_metrics()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1000


@contextlib.contextmanager
def receiver() -> Iterator[tuple[str, str]]:
    """(endpoint, description): rotel on loopback if installed, else a closed port."""
    spec = importlib.util.find_spec("rotel")
    binary = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "rotel-agent"
            if candidate.is_file():
                binary = candidate
    grpc_port, http_port = free_port(), free_port()
    if binary is None:
        yield f"http://127.0.0.1:{http_port}", "none (closed port: exports fail)"
        return
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [str(binary), "start", "--exporter", "blackhole",
             "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
             "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
             "--pid-file", os.path.join(workdir, "rotel.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
        try:
            deadline = time.monotonic() + 20
            while not port_open(http_port):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("rotel did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{http_port}", "rotel (OTLP/HTTP, blackhole exporter)"
        finally:
            process.terminate()
            process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def measure(workflows: int, repeats: int, seed: int) -> dict[str, Any]:
    with receiver() as (endpoint, description):
        configs = configurations(endpoint)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
        one_run(configs["OTLP metrics + traces, ratio 1"], max(workflows // 10, 1), seed)  # warm
        order = list(configs)
        shuffle = random.Random(seed).shuffle
        for _ in range(repeats):
            shuffle(order)
            for name in order:
                runs[name].append(one_run(configs[name], workflows, seed))
    events = runs["no telemetry"][0]["events"]

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    floor_cpu, floor_wall = median("no telemetry", "cpu"), median("no telemetry", "seconds")
    rows = {}
    for name, results in runs.items():
        exports = [r["export_ms"] for r in results if "export_ms" in r]
        rows[name] = {
            "cpu_s": round(median(name, "cpu"), 4),
            "wall_s": round(median(name, "seconds"), 4),
            "cpu_us_per_event": round(median(name, "cpu") / events * 1e6, 3),
            "telemetry_cpu_us_per_event": round((median(name, "cpu") - floor_cpu)
                                                / events * 1e6, 3),
            "telemetry_wall_us_per_event": round((median(name, "seconds") - floor_wall)
                                                 / events * 1e6, 3),
            "metric_export_ms": round(statistics.median(exports), 2) if exports else None,
            "dropped": max((r.get("dropped", 0) for r in results), default=0),
        }
    base = rows["aggregator only (OTLP off)"]["telemetry_cpu_us_per_event"]
    for row in rows.values():
        row["vs_otlp_off"] = (round(row["telemetry_cpu_us_per_event"] / base, 2)
                              if base > 0 else None)
    return {"receiver": description, "events_per_run": events, "workflows": workflows,
            "repeats": repeats, "python": platform.python_version(),
            "machine": f"{platform.machine()} x{os.cpu_count()}", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    report = measure(args.workflows, args.repeats, args.seed)
    print(f"receiver: {report['receiver']}; {report['events_per_run']} events per run, "
          f"{report['repeats']} runs each; Python {report['python']}, {report['machine']}")
    print("telemetry us/event = (run - same run without telemetry) / events, medians")
    print(f"{'configuration':34} {'CPU us/ev':>9} {'wall us/ev':>10} {'x OTLP off':>10} "
          f"{'export ms':>9} {'dropped':>7}")
    for name, row in report["rows"].items():
        ratio = "" if row["vs_otlp_off"] is None else f"{row['vs_otlp_off']:.2f}"
        export = "" if row["metric_export_ms"] is None else f"{row['metric_export_ms']:.1f}"
        print(f"{name:34} {row['telemetry_cpu_us_per_event']:9.2f} "
              f"{row['telemetry_wall_us_per_event']:10.2f} {ratio:>10} {export:>9} "
              f"{row['dropped']:7.0f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
