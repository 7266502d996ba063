"""The lock of a per-event component, and what re-entry from the same thread does.

An orchestrator's thread can re-enter telemetry while telemetry holds its lock: a
signal handler runs between two bytecodes of an update, a finalizer runs when an
allocation inside the update triggers the garbage collector, a listener sends a
signal of its own. None of them may block (the lock's holder is the very frame they
interrupted) and none may touch the cells while that frame is half-way through an
update.

:class:`EventGuard` holds a re-entrant lock, taken so that an interrupt
(``KeyboardInterrupt``, ``SystemExit``) can never leave it held, and a queue of work
deferred by re-entrant calls. It is taken with ``with``, or, where a ``with`` costs too
much (the aggregator's receiver: twice an ``acquire()``/``release()`` pair on CPython
3.11), as the first statement inside a ``try`` whose ``finally`` releases it::

    try:
        lock.acquire()  # interrupted after taking it: we are inside the try
        ...
    finally:
        try:
            lock.release()
        except RuntimeError:  # interrupted while waiting for it: it is not ours
            pass

An interrupt is delivered only between bytecodes or while a call waits, never between
the lock being taken and ``acquire()`` returning, so the ``finally`` runs whenever the
lock was taken; never ``acquire()`` before the ``try`` (an interrupt right after the
call would leave the lock held). A component checks :meth:`held_here`
before taking the lock; when it is true the call appends its work to the queue
instead, and the frame that holds the lock runs the queue as soon as it has released
it (:meth:`run_pending`). If that frame is unwound by the interrupt instead, or the
frame was a read that does not look at the queue, the next call on any thread runs
it once no thread holds the lock. The
queue is bounded: past :data:`MAX_PENDING` entries, work is dropped and counted (:attr:`dropped`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable

log = logging.getLogger("telemetry.reentry")

#: Deferred calls kept per guard; re-entry is rare, so this is never reached in practice.
MAX_PENDING = 1024

#: Every guard alive in the process, for :func:`held_by_this_thread`.
_GUARDS: weakref.WeakSet[EventGuard] = weakref.WeakSet()


class EventGuard:
    """A re-entrant lock that knows whether this thread holds it, and deferred work."""

    def __init__(self) -> None:
        #: Take it with ``with guard.lock:``, or as the module doc shows.
        self.lock = threading.RLock()
        #: Whether the calling thread holds :attr:`lock` (the C lock keeps the owner).
        self.held_here: Callable[[], bool] = self.lock._is_owned  # type: ignore[attr-defined]
        #: (thread id, work) a re-entrant call left for after its thread releases the lock.
        self.pending: deque[tuple[int, Callable[[], object]]] = deque()
        #: Deferred calls dropped because :attr:`pending` was full.
        self.dropped = 0
        _GUARDS.add(self)

    def defer(self, work: Callable[[], object]) -> None:
        """Run ``work`` on this thread once the lock is free (see the module doc);
        never blocks."""
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self.pending.append((threading.get_ident(), work))

    def run_pending(self) -> None:
        """Run the deferred work this thread may run (call it without holding
        :attr:`lock`).

        Its own, and another thread's once no thread holds the lock: that thread
        has finished the update it interrupted (or has ended), so the work is due,
        and it may not come back soon (a read on the alert evaluator's thread that a
        finalizer interrupted comes back an evaluation interval later). Work of a
        thread still mid-update stays where it is: a stop deferred by a signal
        handler must not run concurrently with the update it interrupted. Each item
        runs on its own: one that raises is logged and the rest still run; items
        deferred meanwhile (by a finalizer during this very loop) run too.
        """
        pending, me = self.pending, threading.get_ident()
        while True:
            # The first item this thread may run. Items it may not run stay where
            # they are: taken out even for a moment, their own thread could look at
            # the queue then, find nothing of its own, and leave them behind.
            item = next((item for item in list(pending) if item[0] == me), None)
            if item is None and pending and self._free():
                item = next(iter(list(pending)), None)
            if item is None:
                return
            try:
                pending.remove(item)
            except ValueError:  # another thread took it
                continue
            try:
                item[1]()
            except Exception:
                log.exception("deferred telemetry work failed")

    def _free(self) -> bool:
        """Whether no thread holds :attr:`lock` (the caller does not): taken and
        released at once, and released even if an interrupt lands in between."""
        released = False
        try:
            self.lock.acquire(blocking=False)
        finally:
            try:
                self.lock.release()
                released = True
            except RuntimeError:  # another thread holds it
                pass
        return released

    def renew(self) -> None:
        """A fresh lock for a forked child, where another parent thread may have held it."""
        self.lock = threading.RLock()
        self.held_here = self.lock._is_owned  # type: ignore[attr-defined]


def held_by_this_thread() -> EventGuard | None:
    """A guard whose lock the calling thread holds, if any: telemetry's own code is
    on this thread's stack, interrupted by the caller."""
    for guard in list(_GUARDS):
        if guard.held_here():
            return guard
    return None
