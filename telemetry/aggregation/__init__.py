"""Aggregation: the one receiver of every signal and the in-memory cells it updates.

Entry module: :mod:`telemetry.aggregation.aggregator` (:class:`Aggregator`). The
per-signal updates are in :mod:`~telemetry.aggregation.handlers`, label sets and cells
in :mod:`~telemetry.aggregation.series`, sliding windows in
:mod:`~telemetry.aggregation.windows`, process memory and CPU in
:mod:`~telemetry.aggregation.process`; the state the handlers update is declared in
:mod:`~telemetry.aggregation.state`, re-entry from the sending thread is handled by
:mod:`~telemetry.aggregation.reentry`.
"""

from telemetry.aggregation.aggregator import Aggregator

__all__ = ["Aggregator"]
