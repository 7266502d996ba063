"""Per-event cost of a signal through the whole pipeline, over a bare blinker send.

The pipeline is a started Telemetry with the Prometheus, OTLP and StatsD exporters
enabled; the baseline sends the same payloads to signals of a private namespace with
one no-op receiver each. Two payload sets: the hottest signal (``handoff_completed``)
repeated, and the recorded signal mix of reference workflows. The exporters run on
their own schedule, so the ratio must not depend on which are enabled or reachable.
"""

from __future__ import annotations

from benchmarks.harness import (
    HANDOFF,
    Context,
    Result,
    bare_signals,
    connected,
    dropped,
    figure,
    interleave,
    listener_count,
    median,
    paired_ratios,
    repeat,
    replay,
    spread,
    start_telemetry,
    time_loop,
    yolo_signals,
)

NAME = "per_event"
TITLE = "per-event cost: pipeline / bare blinker send"
TARGET = "<= 2.0"


def run(ctx: Context) -> Result:
    settings = ctx.settings
    count = settings.count(full=100_000, quick=20_000, minimum=500)
    rounds = settings.rounds(full=15, quick=5)
    bare, ours = bare_signals(), yolo_signals()
    short, payload = HANDOFF
    metrics = start_telemetry(ctx.config(), receiving=False)
    traced = start_telemetry(ctx.config(tracing=True), receiving=False) if ctx.tracing else None
    try:
        def measure(telemetry, body, events: int = count):
            def once() -> float:
                if telemetry is None:
                    return time_loop(body, events)
                with connected(telemetry):
                    return time_loop(body, events, telemetry)
            return once

        # Spans cost ~10x an event: a tenth of the events keeps the rounds as long.
        traced_count = max(count // 10, 100)

        variants = {
            "bare_handoff": measure(None, repeat(bare[short], payload)),
            "ours_handoff": measure(metrics, repeat(ours[short], payload)),
            "bare_mix": measure(None, replay(bare, ctx.events)),
            "ours_mix": measure(metrics, replay(ours, ctx.events)),
        }
        if traced is not None:
            variants["traced_handoff"] = measure(traced, repeat(ours[short], payload),
                                                 traced_count)
            variants["traced_mix"] = measure(traced, replay(ours, ctx.events), traced_count)
        samples = interleave(variants, rounds)
        tracer_listeners = listener_count(traced) if traced is not None else 0
        events_counted = metrics.snapshot()[1].events_total
        drops = {"metrics": dropped(metrics)}
        if traced is not None:
            drops["traced"] = dropped(traced)
    finally:
        metrics.stop()
        if traced is not None:
            traced.stop()

    figures, details = [], {"events_per_round": count, "rounds": rounds,
                            "ns_per_event": {k: round(median(v) * 1e9, 1)
                                             for k, v in samples.items()},
                            "events_sent_to_pipeline": 2 * count * (rounds + 1),
                            "events_counted_by_pipeline": events_counted, "dropped": drops}
    for label, suffix in (("handoff_completed", "handoff"), ("reference mix", "mix")):
        ratios = paired_ratios(samples, f"ours_{suffix}", f"bare_{suffix}")
        figures.append(figure(NAME, f"{label}: ours / bare send", median(ratios), "x",
                              target=TARGET, noise=spread(ratios)))
    for label, suffix in (("handoff_completed", "handoff"), ("reference mix", "mix")):
        name = f"{label}, traced at 1.0: ours / bare send"
        if traced is None:
            figures.append(figure(NAME, name, None, "x", note="tracing not implemented yet"))
            continue
        ratios = paired_ratios(samples, f"traced_{suffix}", f"bare_{suffix}")
        note = "" if tracer_listeners else "tracing enabled but no tracer hooked the aggregator"
        spans_dropped = drops["traced"].get("tracer/queue_full", 0)
        if spans_dropped:
            dropped_note = f"{spans_dropped:,.0f} spans dropped (queue full)"
            note = f"{note}; {dropped_note}" if note else dropped_note
        figures.append(figure(NAME, name, median(ratios), "x", noise=spread(ratios), note=note))
    return Result(NAME, TITLE, figures, details)
