"""Sliding windows over cumulative counters, in fixed memory and no per-event cost.

Rather than bucketing every event (a per-event cost), a window remembers the
cumulative totals at slot boundaries, as Prometheus' ``increase()`` does with
scrapes. The aggregator checks one float per event and records the totals lazily,
at the first event after a boundary and before applying it: since nothing happened
between the previous event and the boundary, the totals at that moment are exact for
the boundary. One record then stands for every boundary up to the next record.

The total over the window ending at ``now`` is ``current - totals at b``, where ``b``
is the earliest slot boundary at or after ``now - length_s``: an event leaves the
window between ``length_s - slot`` and ``length_s`` after it happened.
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
        # The newest record at or before any boundary in the window is among the
        # last ``buckets + 1`` records, since each record has its own boundary.
        self._records: deque[tuple[float, Mapping[str, float]]] = deque(maxlen=buckets + 1)
        self.next_boundary = self._boundary_after(start)

    def _boundary_after(self, now: float) -> float:
        return (math.floor(now / self.slot_s) + 1) * self.slot_s

    def due(self, now: float) -> bool:
        return now >= self.next_boundary

    def record(self, now: float, totals: Mapping[str, float]) -> None:
        """Store ``totals`` (as they were before the event at ``now``) for the pending
        boundary; call only when :meth:`due`."""
        self._records.append((self.next_boundary, dict(totals)))
        self.next_boundary = self._boundary_after(now)

    def totals(self, now: float, current: Mapping[str, float]) -> dict[str, float]:
        """Increase of every counter over the window ending at ``now``.

        ``now`` must not be past a boundary still due: record first.
        """
        start = math.ceil((now - self.length_s) / self.slot_s) * self.slot_s
        base: Mapping[str, float] = {}
        for boundary, values in reversed(self._records):
            if boundary <= start:
                base = values
                break
        return {key: value - base.get(key, 0.0) for key, value in current.items()}
