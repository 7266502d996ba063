"""Sliding-window counters in fixed memory.

A window of ``length_s`` seconds is cut into ``buckets`` slots of a ring. Each slot
remembers which time slice it holds, so a slot from an older lap of the ring is
recognised as expired and reset on reuse; nothing ever needs a sweeper thread.
Resolution is one slot: an event leaves the window between ``length_s - slot`` and
``length_s`` after it happened.
"""

from __future__ import annotations


class SlidingCounter:
    __slots__ = ("_counts", "_slices", "buckets", "length_s", "slot_s")

    def __init__(self, length_s: float, buckets: int = 60) -> None:
        if length_s <= 0 or buckets <= 0:
            raise ValueError("a window needs a positive length and bucket count")
        self.length_s = float(length_s)
        self.buckets = buckets
        self.slot_s = self.length_s / buckets
        self._counts = [0.0] * buckets
        self._slices = [-1] * buckets

    def add(self, now: float, amount: float = 1.0) -> None:
        time_slice = int(now // self.slot_s)
        index = time_slice % self.buckets
        if self._slices[index] != time_slice:
            self._slices[index] = time_slice
            self._counts[index] = 0.0
        self._counts[index] += amount

    def total(self, now: float) -> float:
        """Sum of the amounts added within the window ending at ``now``."""
        oldest = int(now // self.slot_s) - self.buckets
        return sum(c for c, s in zip(self._counts, self._slices, strict=True) if s > oldest)

    def rate(self, now: float) -> float:
        """Amount per second over the window."""
        return self.total(now) / self.length_s
