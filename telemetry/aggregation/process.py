"""Process memory and CPU, sampled with psutil when metrics are collected, never per event."""

from __future__ import annotations

import os
import threading
import time

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
