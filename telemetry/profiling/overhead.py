"""Telemetry's own cost, as the ``overhead`` check of /health.

The aggregator times every 64th event it handles and adds the time, scaled by 64,
to ``yolo_telemetry_handler_seconds_total`` (timing every event would cost more
than the handling). This check sets that estimate against the process's CPU time
and wall time since telemetry started, which is what a dashboard panel does with
``rate(yolo_telemetry_handler_seconds_total[5m])``.

It is a lower bound: it covers the aggregator's handling of each event (validation,
cell updates), not blinker's dispatch before it, listeners after it (tracing, slow
capture), nor exporters collecting on their own threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from telemetry import catalogue as cat


def overhead_check(aggregator: Any) -> Callable[[], dict[str, Any]]:
    """A /health check reporting the estimated share of CPU telemetry's handlers use."""
    cpu_started = time.process_time()
    wall_started = time.monotonic()

    def check() -> dict[str, Any]:
        handler_s = aggregator.value(cat.HANDLER_TIME)
        events = sum(sample.value for family in aggregator.collect((cat.EVENTS,))
                     for sample in family.samples)
        cpu_s = max(time.process_time() - cpu_started, 1e-9)
        wall_s = max(time.monotonic() - wall_started, 1e-9)
        return {
            "status": "ok",
            "handler_seconds": round(handler_s, 6),
            "events": int(events),
            "per_event_us": round(handler_s / events * 1e6, 3) if handler_s else None,
            "process_cpu_seconds": round(cpu_s, 3),
            "share_of_cpu": round(handler_s / cpu_s, 6),
            "share_of_wall": round(handler_s / wall_s, 6),
            "note": "sampled estimate (every 64th event timed) of the aggregator's handling; "
                    "excludes blinker dispatch, listeners and exporters",
        }

    return check
