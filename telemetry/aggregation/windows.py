"""Sliding windows over cumulative counters, in fixed memory and no per-event cost.

Rather than bucketing every event (a per-event cost), a window remembers the
cumulative totals taken at reads, as Prometheus' ``increase()`` does with scrapes:
at most one record per slot, made by the first read (a collection, a snapshot) after
a slot boundary. Senders never record: recording walks every series of the counters
it totals, which a sender must never do (it would wait for it on whichever event
came first after a boundary).

The total over the window ending at ``now`` is ``current - totals at r``, where ``r``
is the newest record taken at or before ``now - length_s``. An event therefore leaves
the window between ``length_s`` and ``length_s`` plus the time between two records
after it happened: one slot when something reads at least once a slot (the alert
evaluator, a scrape, an exporter's timer), more when nothing does. The figure is
never smaller than the exact window's: an event is never dropped early.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping


class CumulativeWindow:
    """Window totals of a set of named cumulative counters."""

    __slots__ = ("_records", "length_s", "next_boundary", "slot_s")

    def __init__(self, length_s: float, buckets: int, start: float) -> None:
        if length_s <= 0 or buckets <= 0:
            raise ValueError("a window needs a positive length and bucket count")
        self.length_s = float(length_s)
        self.slot_s = self.length_s / buckets
        # Records sit in distinct slots, so the newest record at or before the window's
        # start is always among the last ``buckets + 2``.
        self._records: deque[tuple[float, Mapping[str, float]]] = deque(maxlen=buckets + 2)
        self.next_boundary = start  # the first read records, whenever it comes

    def _boundary_after(self, now: float) -> float:
        return (math.floor(now / self.slot_s) + 1) * self.slot_s

    def due(self, now: float) -> bool:
        """Whether nothing was recorded yet, or a slot boundary has passed since the
        last record."""
        return now >= self.next_boundary

    def record(self, now: float, totals: Mapping[str, float]) -> None:
        """Store ``totals``, read at ``now``; call only when :meth:`due`."""
        self._records.append((now, dict(totals)))
        self.next_boundary = self._boundary_after(now)

    def totals(self, now: float, current: Mapping[str, float]) -> dict[str, float]:
        """Increase of every counter over the window ending at ``now`` (see the module
        doc for where its start falls)."""
        start = now - self.length_s
        base: Mapping[str, float] = {}
        for taken, values in reversed(self._records):
            if taken <= start:
                base = values
                break
        return {key: value - base.get(key, 0.0) for key, value in current.items()}
