"""What is sampled when metrics are collected, never per event: process memory and CPU
(psutil), and the offset from the monotonic clock to the wall clock."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable

import psutil


class ProcessSampler:
    """Resident memory (bytes) and CPU percent since the previous sample.

    Samples taken within ``min_interval_s`` of each other share one reading, so
    several exporters collecting at once cost one psutil call. The process handle
    is renewed after a fork, so a child reports itself, not its parent.
    """

    def __init__(self, min_interval_s: float = 0.5) -> None:
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._pid = -1
        self._process: psutil.Process | None = None
        self._taken_at = -float("inf")
        self._last = (0.0, 0.0)

    def sample(self) -> tuple[float, float]:
        with self._lock:
            now = time.monotonic()
            if now - self._taken_at < self.min_interval_s and self._pid == os.getpid():
                return self._last
            try:
                process = self._handle()
                with process.oneshot():
                    self._last = (float(process.memory_info().rss), process.cpu_percent(None))
            except psutil.Error:
                pass  # keep the last reading; a transient psutil error is not worth more
            self._taken_at = now
            return self._last

    def _handle(self) -> psutil.Process:
        if self._process is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._process = psutil.Process(self._pid)
            self._process.cpu_percent(None)  # primes the CPU counter
        return self._process


class WallOffset:
    """Wall time minus monotonic time, measured at each collection but kept unless it
    moved by more than a millisecond (the wall clock was set): the timestamp gauges
    then stay the same between collections, which push exporters that send only
    changed gauges rely on."""

    def __init__(self, clock: Callable[[], float], wall_clock: Callable[[], float]) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        #: The offset kept.
        self.offset = wall_clock() - clock()

    def update(self) -> float:
        """Measure the offset; the one kept (the measured one if it moved)."""
        measured = self._measured()
        if abs(measured - self.offset) > 1e-3:
            self.offset = measured
        return self.offset

    def _measured(self) -> float:
        """The wall clock read between two reads of the monotonic one: another thread
        taking the interpreter between two reads (up to its switch interval, 5 ms)
        would otherwise move it by milliseconds and every timestamp gauge with it.
        The closest of three pairs is kept."""
        closest, offset = math.inf, 0.0
        for _ in range(3):
            before = self._clock()
            wall = self._wall_clock()
            after = self._clock()
            if after - before < closest:
                closest, offset = after - before, wall - (before + after) / 2
        return offset
