"""Profiling: where the orchestrator spends its time, and what telemetry itself costs.

* :class:`profiled` times blocks and functions into ``yolo_operation_duration_seconds``.
* ``/debug/profile`` samples every thread for N seconds (speedscope, folded stacks,
  HTML); ``/debug/slow`` keeps stacks of operations slower than a threshold. Both
  need ``debug.enabled`` (see :mod:`telemetry.profiling.endpoints`).
* The ``overhead`` check of /health estimates telemetry's own share of CPU.

See docs/profiling.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from telemetry.profiling.endpoints import ProfileBusy, Profiling
from telemetry.profiling.overhead import overhead_check
from telemetry.profiling.timing import profiled, record_operation

if TYPE_CHECKING:
    from telemetry.runtime import Telemetry

__all__ = ["ProfileBusy", "Profiling", "install", "overhead_check", "profiled",
           "record_operation"]


def install(tel: Telemetry) -> Profiling | None:
    """Add the overhead check to ``tel``; with ``debug.enabled``, also the /debug routes
    and (with ``debug.slow.enabled``) the slow-operation sampler."""
    tel.add_health_check("overhead", overhead_check(tel.aggregator))
    if not tel.config.debug.enabled:
        return None
    return Profiling(tel.aggregator, tel.config.debug, tel.server)
