"""Put a framework's events back in the order they happened before they become signals.

Some frameworks (CrewAI) call their event listeners from a thread pool, so a listener
sees an agent finish before it started or a crew complete before its last tool call.
Counting such a stream as it arrives would pair the wrong starts and ends, so the
adapter pushes every event into a :class:`ReorderBuffer` with the time the framework
stamped on it, and the buffer hands them on in that order:

* an event is released once it is ``delay_s`` old by its own timestamp (a watermark:
  anything stamped earlier has had that long to arrive), checked on every push and by a
  one-shot timer while the buffer holds something;
* :meth:`ReorderBuffer.release_all` hands on everything (the framework said all earlier
  events were delivered, e.g. a crew's kickoff completed after CrewAI flushed its bus;
  or the application asked for a flush);
* past ``capacity`` events the oldest are released early, so memory stays bounded.

An event arriving after a later-stamped one was already released is handed on at once
(too late to reorder) and counted in :attr:`ReorderBuffer.late`.

The consumer runs under the buffer's re-entrant lock, taken with ``with`` (released
whatever is raised), so two threads never hand on events in an interleaved order; it
must not wait for another thread that pushes to the same buffer.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

#: The consumer: called with each released item, in timestamp order.
Consumer = Callable[[Any], None]


class ReorderBuffer:
    """A bounded min-heap of (timestamp, tie, arrival, item); see the module doc."""

    def __init__(self, consume: Consumer, *, delay_s: float = 1.0, capacity: int = 10_000,
                 clock: Callable[[], float] = time.time, timer: bool = True) -> None:
        self._consume = consume
        self.delay_s = delay_s
        self.capacity = capacity
        self._clock = clock
        self._timer_enabled = timer
        self._heap: list[tuple[float, int, int, Any]] = []
        self._arrivals = itertools.count()
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._released_up_to = float("-inf")
        self.late = 0
        self.closed = False

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, timestamp: float, item: Any, tie: int = 0) -> None:
        """Take ``item`` stamped ``timestamp`` (epoch seconds); ``tie`` orders items with
        the same timestamp. Hands on whatever is due."""
        with self._lock:
            if self.closed:
                return
            if timestamp < self._released_up_to:
                self.late += 1
                self._consume(item)
                return
            heapq.heappush(self._heap, (timestamp, tie, next(self._arrivals), item))
            while len(self._heap) > self.capacity:
                self._pop_one()
            self._release_due()
            self._arm_timer()

    def release_all(self) -> None:
        """Hand on everything held, in order."""
        with self._lock:
            while self._heap:
                self._pop_one()

    def close(self) -> None:
        """Hand on everything held and take nothing more (``uninstrument``)."""
        with self._lock:
            self.release_all()
            self.closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _release_due(self) -> None:
        watermark = self._clock() - self.delay_s
        while self._heap and self._heap[0][0] <= watermark:
            self._pop_one()

    def _pop_one(self) -> None:
        timestamp, _, _, item = heapq.heappop(self._heap)
        self._released_up_to = max(self._released_up_to, timestamp)
        self._consume(item)

    def _arm_timer(self) -> None:
        """One timer at a time, due when the oldest held item is: events still get out
        when the framework goes quiet."""
        if not self._timer_enabled or not self._heap or self._timer is not None:
            return
        wait = max(self._heap[0][0] + self.delay_s - self._clock(), 0.0) + 0.01
        self._timer = threading.Timer(wait, self._on_timer)
        self._timer.daemon = True
        self._timer.name = "yolo-telemetry-reorder"
        self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            if self.closed:
                return
            self._release_due()
            self._arm_timer()
