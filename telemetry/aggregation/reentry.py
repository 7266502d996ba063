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
it (:meth:`run_pending`); a read runs it once it returns (:func:`then_deferred`), so a
finalizer that sends inside an exporter's or the alert evaluator's read is recorded
then, not at that thread's next read. If that frame is unwound by the interrupt
instead, the next call on that thread runs the queue, or any thread's call once the
work has waited :data:`STRANDED_S` and no thread holds the lock. The queue is bounded:
past :data:`MAX_PENDING` entries, work is dropped and counted (:attr:`dropped`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("telemetry.reentry")

#: Deferred calls kept per guard; re-entry is rare, so this is never reached in practice.
MAX_PENDING = 1024

#: How long work waits for its own thread before any thread may run it (when no thread
#: holds the lock): its thread runs it microseconds after the update it interrupted,
#: so work this old was left by a frame an interrupt unwound.
STRANDED_S = 0.1

#: Every guard alive in the process, for :func:`held_by_this_thread`.
_GUARDS: weakref.WeakSet[EventGuard] = weakref.WeakSet()


class EventGuard:
    """A re-entrant lock that knows whether this thread holds it, and deferred work."""

    def __init__(self) -> None:
        #: Take it with ``with guard.lock:``, or as the module doc shows.
        self.lock = threading.RLock()
        #: Whether the calling thread holds :attr:`lock` (the C lock keeps the owner).
        self.held_here: Callable[[], bool] = self.lock._is_owned  # type: ignore[attr-defined]
        #: (thread id, work, monotonic time) a re-entrant call left for after its thread
        #: releases the lock.
        self.pending: deque[tuple[int, Callable[[], object], float]] = deque()
        #: Deferred calls dropped because :attr:`pending` was full.
        self.dropped = 0
        _GUARDS.add(self)

    def defer(self, work: Callable[[], object]) -> None:
        """Run ``work`` on this thread once the lock is free (see the module doc);
        never blocks."""
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self.pending.append((threading.get_ident(), work, time.monotonic()))

    def run_pending(self) -> None:
        """Run the deferred work this thread may run (call it without holding
        :attr:`lock`): its own, another thread's once that thread has ended, or once
        it has waited :data:`STRANDED_S` and no thread holds the lock.

        Work of a thread still mid-update stays for that thread, which is about to run
        it: a stop deferred by a signal handler must run where the handler ran, after
        the update it interrupted, not concurrently with it. Each item runs on its
        own: one that raises is logged and the rest still run; items deferred
        meanwhile (by a finalizer during this very loop) run too.
        """
        pending, me = self.pending, threading.get_ident()
        while True:
            # The first item this thread may run. Items it may not run stay where
            # they are: taken out even for a moment, their own thread could look at
            # the queue then, find nothing of its own, and leave them behind.
            item = next((item for item in list(pending) if item[0] == me), None)
            if item is None and pending:
                item = self._stranded()
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

    def _stranded(self) -> tuple[int, Callable[[], object], float] | None:
        """The first item of another thread that any thread may run now."""
        stranded_before = time.monotonic() - STRANDED_S
        for item in list(self.pending):
            if not _alive(item[0]) or (item[2] <= stranded_before and self._free()):
                return item
        return None

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


def _alive(ident: int) -> bool:
    return any(thread.ident == ident for thread in threading.enumerate())


Method = TypeVar("Method", bound=Callable[..., Any])


def then_deferred(method: Method) -> Method:
    """Decorate a method of an object whose ``_guard`` is an :class:`EventGuard`, which
    takes the lock: once it has returned, the work this thread deferred meanwhile runs
    (a finalizer that sent while an allocation of a read collected garbage). Without
    it, a read would leave that work until its thread's next call."""
    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        guard = self._guard
        if guard.pending and not guard.held_here():
            guard.run_pending()
        return result
    return run  # type: ignore[return-value]


def held_by_this_thread() -> EventGuard | None:
    """A guard whose lock the calling thread holds, if any: telemetry's own code is
    on this thread's stack, interrupted by the caller."""
    for guard in list(_GUARDS):
        if guard.held_here():
            return guard
    return None
