"""The naive design as a baseline: every client library updated on every event.

Per event, a receiver calls prometheus_client ``labels().inc()`` and
``labels().observe()``, an OpenTelemetry SDK counter and histogram (a MeterProvider
with an in-memory reader), and a statsd client's ``incr`` and ``timing`` (UDP to a
closed loopback port): what the original story sketches. The figure is that cost
over ours (the full pipeline), both behind the same blinker send.
"""

from __future__ import annotations

from typing import Any

import blinker

from benchmarks.harness import (
    HANDOFF,
    Context,
    Result,
    connected,
    figure,
    interleave,
    median,
    paired_ratios,
    repeat,
    spread,
    start_telemetry,
    time_loop,
    yolo_signals,
)

NAME = "naive"
TITLE = "naive design (client libraries per event) / ours"
TARGET = ">= 8"


class NaiveReceiver:
    """What the telemetry would cost if each backend's client ran per event."""

    def __init__(self, statsd_port: int) -> None:
        import statsd
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from prometheus_client import CollectorRegistry, Counter, Histogram

        from telemetry import catalogue as cat

        spec, duration = cat.HANDOFFS, cat.HANDOFF_DURATION
        registry = CollectorRegistry(auto_describe=False)
        self.prom_counter = Counter("naive_handoffs", spec.help, list(spec.labels),
                                    registry=registry)
        self.prom_histogram = Histogram("naive_handoff_duration_seconds", duration.help,
                                        list(duration.labels), registry=registry,
                                        buckets=duration.buckets)
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        meter = self.provider.get_meter("naive")
        self.otel_counter = meter.create_counter(spec.name, unit="{handoff}")
        self.otel_histogram = meter.create_histogram(duration.name, unit="s")
        self.statsd = statsd.StatsClient("127.0.0.1", statsd_port, prefix="naive")

    def __call__(self, sender: Any, *, from_agent: str, to_agent: str, duration_s: float,
                 **_: Any) -> None:
        self.prom_counter.labels(from_agent, to_agent).inc()
        self.prom_histogram.labels(from_agent, to_agent).observe(duration_s)
        attributes = {"from_agent": from_agent, "to_agent": to_agent}
        self.otel_counter.add(1, attributes)
        self.otel_histogram.record(duration_s, attributes)
        self.statsd.incr("handoffs")
        self.statsd.timing("handoff.duration", duration_s * 1000.0)

    def close(self) -> None:
        self.provider.shutdown()
        self.statsd.close()


def run(ctx: Context) -> Result:
    settings = ctx.settings
    count = settings.count(full=50_000, quick=10_000, minimum=300)
    rounds = settings.rounds(full=11, quick=5)
    short, payload = HANDOFF
    naive = NaiveReceiver(ctx.receivers.statsd_port)
    naive_signal = blinker.Namespace().signal(f"naive.{short}")
    naive_signal.connect(naive, weak=False)
    ours = start_telemetry(ctx.config(), receiving=False)
    try:
        def measure_ours() -> float:
            with connected(ours):
                return time_loop(repeat(yolo_signals()[short], payload), count, ours)

        samples = interleave({
            "naive": lambda: time_loop(repeat(naive_signal, payload), count),
            "ours": measure_ours,
        }, rounds)
    finally:
        ours.stop()
        naive.close()
    ratios = paired_ratios(samples, "naive", "ours")
    details = {"events_per_round": count, "rounds": rounds,
               "ns_per_event": {k: round(median(v) * 1e9, 1) for k, v in samples.items()}}
    return Result(NAME, TITLE, [figure(NAME, "handoff_completed: naive / ours", median(ratios),
                                       "x", target=TARGET, noise=spread(ratios))], details)
