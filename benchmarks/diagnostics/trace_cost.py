"""Tracing's CPU per event, by thread: ``python -m benchmarks.diagnostics.trace_cost``.

Not part of the suite's table: a diagnostic for whoever works on the span path. With
a real OTLP receiver (rotel, discarding), it measures

* **in-line**: the tracer's work on the recording thread, replaying the accepted
  events of reference workflows into the tracer's handlers as the aggregator calls
  them (span building, the table, queueing), CPU time of the replaying thread per
  event;
* **worker**: what the span export thread does per batch (encode, then send over
  HTTP), CPU time per span and per event, for full batches of the spans the replay
  made; then, for the split, the same batch encoded again and sent again, timed
  apart (the second encoding finds the data in the CPU's caches: a little cheaper).

Both are medians over interleaved rounds. ``--compare TREE...`` runs this script
once per round in each source tree given (a checkout of another commit), in turn,
and prints the figures side by side: before/after in the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SEED = 11


def _config(endpoint: str) -> dict[str, Any]:
    # A queue and batch so large that the worker never exports during the replay:
    # the replay thread's CPU is the in-line part alone, and the spans stay queued.
    return {"server": {"enabled": False},
            "exporters": {"prometheus": {"enabled": False},
                          "otlp": {"enabled": True, "endpoint": endpoint, "metrics": False,
                                   "traces": True}},
            "tracing": {"enabled": True, "sampler_ratio": 1.0,
                        "batch": {"max_queue_size": 1 << 22, "max_export_batch_size": 1 << 22,
                                  "schedule_delay_ms": 3_600_000}}}


def measure(endpoint: str, workflows: int, rounds: int, batch_size: int) -> dict[str, Any]:
    from telemetry import Telemetry, load_config
    from telemetry.cli.simulator import ReferenceOrchestrator

    tel = Telemetry(load_config(_config(endpoint), environ={})).start()
    try:
        otlp = tel.exporters["otlp"]
        tracer = otlp.tracer
        processor = otlp._provider._active_span_processor._span_processors[0]
        guarded = otlp._span_exporter
        inner = guarded.inner
        queue = processor._queue
        events: list[tuple[str, dict[str, Any], float]] = []

        def record(name: str, fields: dict[str, Any], ts: float) -> None:
            events.append((name, dict(fields), ts))

        tel.aggregator.add_listener(record)
        ReferenceOrchestrator(seed=SEED).run(workflows=workflows)
        tel.aggregator.remove_listener(record)
        tracer.close()  # not following any more; the replay calls it directly
        queue.clear()
        at_send, handlers, lock = tracer.send_handlers, tracer.follower_handlers, tracer._lock

        def on_event(name: str, fields: dict[str, Any], ts: float) -> None:
            """What the aggregator runs for the tracer on one accepted event."""
            with lock:
                handler = at_send.get(name)
                if handler is not None:
                    handler(fields, ts)
                handler = handlers.get(name)
                if handler is not None:
                    handler(fields, ts)

        inline, worker, encode, send, spans_per_event = [], [], [], [], []
        for _ in range(rounds):
            gc.collect()
            gc.disable()
            started = time.thread_time()
            for name, fields, ts in events:
                on_event(name, fields, ts)
            took = time.thread_time() - started
            gc.enable()
            inline.append(took / len(events))
            spans = list(queue)
            queue.clear()
            spans_per_event.append(len(spans) / len(events))
            batches = [spans[i:i + batch_size]
                       for i in range(0, len(spans) - batch_size + 1, batch_size)]
            encoder, client = inner.encoder, inner._client
            gc.collect()
            cpu_worker = cpu_encode = cpu_send = 0.0
            count = 0
            for batch in batches:
                started = time.thread_time()
                guarded.export_records(batch)  # what the worker does: encode, send
                cpu_worker += time.thread_time() - started
                started = time.thread_time()
                data = encoder.encode_request(batch)  # again, for the split
                middle = time.thread_time()
                client.export(data)
                cpu_send += time.thread_time() - middle
                cpu_encode += middle - started
                count += len(batch)
            worker.append(cpu_worker / count)
            encode.append(cpu_encode / count)
            send.append(cpu_send / count)
        spe = statistics.median(spans_per_event)
        median = statistics.median
        return {"events": len(events), "spans_per_event": round(spe, 4),
                "inline_us_per_event": round(median(inline) * 1e6, 3),
                "worker_us_per_span": round(median(worker) * 1e6, 3),
                "encode_us_per_span": round(median(encode) * 1e6, 3),
                "send_us_per_span": round(median(send) * 1e6, 3),
                "worker_us_per_event": round(median(worker) * spe * 1e6, 3),
                "failures": dict(tel.aggregator.collect and _drops(tel))}
    finally:
        tel.stop()


def _drops(tel: Any) -> dict[str, float]:
    from telemetry import catalogue as cat

    (family,) = tel.aggregator.collect([cat.DROPPED])
    return {"/".join(s.labels): s.value for s in family.samples}


def _run_here(args: argparse.Namespace) -> dict[str, Any]:
    if args.endpoint:
        return measure(args.endpoint, args.workflows, args.rounds, args.batch)
    from benchmarks.receivers import receivers

    with receivers("real") as found:
        return measure(found.otlp_endpoint, args.workflows, args.rounds, args.batch)


def _compare(args: argparse.Namespace) -> None:
    from benchmarks.receivers import receivers

    script = Path(__file__).resolve()
    results: dict[str, list[dict[str, Any]]] = {tree: [] for tree in args.compare}
    with receivers("real") as found:
        for _ in range(args.runs):
            for tree in args.compare:
                env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
                out = subprocess.run(
                    [sys.executable, str(script), "--endpoint", found.otlp_endpoint,
                     "--workflows", str(args.workflows), "--rounds", str(args.rounds),
                     "--batch", str(args.batch), "--json"],
                    env=env, cwd=tree, capture_output=True, text=True, check=True)
                results[tree].append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = ("inline_us_per_event", "worker_us_per_span", "encode_us_per_span",
            "send_us_per_span", "worker_us_per_event", "spans_per_event")
    print(f"{'tree':40} " + " ".join(f"{k[:-7] if k.endswith('_per_event') else k:>18}"
                                     for k in keys))
    for tree, runs in results.items():
        print(f"{tree[-40:]:40} " + " ".join(
            f"{statistics.median(r[k] for r in runs):18.3f}" for k in keys))
    print(json.dumps(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--endpoint", default=None, help="an OTLP/HTTP receiver to use")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--compare", nargs="+", default=None, metavar="TREE")
    parser.add_argument("--runs", type=int, default=3, help="with --compare: runs per tree")
    args = parser.parse_args(argv)
    if args.compare:
        _compare(args)
        return 0
    result = _run_here(args)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
