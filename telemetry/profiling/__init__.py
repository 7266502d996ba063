"""Profiling: where the orchestrator spends its time, and what telemetry itself costs.

* :class:`profiled` times blocks and functions into ``yolo_operation_duration_seconds``.
* ``/debug/profile`` samples every thread for N seconds (speedscope, folded stacks,
  HTML); ``/debug/slow`` keeps stacks of operations slower than a threshold. Both
  need ``debug.enabled`` (see :mod:`telemetry.profiling.endpoints`).
* The ``overhead`` check of /health estimates telemetry's own share of CPU.

See docs/profiling.md.
"""

from telemetry.profiling.endpoints import ProfileBusy, Profiling
from telemetry.profiling.overhead import overhead_check
from telemetry.profiling.timing import profiled, record_operation

__all__ = ["ProfileBusy", "Profiling", "overhead_check", "profiled", "record_operation"]
