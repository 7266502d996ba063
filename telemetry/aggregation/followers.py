"""Who follows and who listens to an aggregator's events, and how its receivers
receive them.

* A **follower** (:class:`Follower`: the tracer) runs its handler of each accepted
  event right after the event's metrics update, under the aggregator's lock, in the
  order the events were sent, wherever the event is recorded: queued events are
  followed in the aggregator's batches (a batch's metrics first, then its followers'
  handlers: each loop keeps its own code and tables in the CPU's caches), so a
  follower costs no event its place in the queue. What must happen on the sending
  thread when a signal is sent (the tracer's live trace context) is its *send
  handler*; the few signals it needs whole on that thread are in its ``in_line``.
* A **listener** (:data:`EventListener`: profiling's signal-thread notes and
  slow-operation capture) is called on the sending thread after the update, outside
  the lock; while one is attached every event is recorded in line.

:class:`Followers` holds both for one aggregator and tells each of its receivers how
to receive (:meth:`Followers.configure`). A handler's or listener's exception is
counted as ``dropped{listener,exception}`` and logged once, never raised.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import Any, Protocol

#: Called after an event is accepted: (signal name, payload, event timestamp).
EventListener = Callable[[str, dict[str, Any], float], None]

#: A follower's handler of one signal: (payload, event timestamp in epoch seconds).
FollowerHandler = Callable[[dict[str, Any], float], None]
#: A follower's handler of a signal when it is sent, on the sending thread, under the
#: lock, before the event is queued: (payload, event timestamp in epoch seconds).
SendHandler = Callable[[dict[str, Any], float], None]


class Follower(Protocol):
    """What runs after the metrics update of each accepted event, under the
    aggregator's lock and in the order the events were recorded: the tracer
    (:class:`telemetry.tracing.tracer.SignalTracer`), which builds spans from the same
    events. Its handlers run wherever the event is recorded (queued, or in line for
    the signals in :attr:`in_line`); they must not take another lock the aggregator's
    readers could hold. See :meth:`~telemetry.aggregation.aggregator.Aggregator.follow`.
    """

    #: Signal name -> handler (signals it does not handle are absent).
    follower_handlers: dict[str, FollowerHandler]
    #: Signal name -> what it does when the signal is sent, on the sending thread,
    #: under the lock, before the event is queued (:data:`SendHandler`): what must
    #: happen there and then (the tracer sets the live trace context), the rest left
    #: to its ``follower_handlers``, in order.
    send_handlers: dict[str, SendHandler]
    #: Signals recorded and followed in line, after the queued events.
    in_line: frozenset[str]
    #: The most events that may wait in the queue (<= 1: every event in line).
    wait_limit: int

    def span_ids(self) -> tuple[int, int] | None:
        """(trace id, span id) of the sampled span current here, or None: read when an
        event is sent, kept as its observations' exemplar."""

    def before_events(self) -> None:
        """Called under the lock before each batch and each event recorded in line."""


class Followers:
    """The followers and listeners of one aggregator. ``failed(who)`` counts and logs
    the exception being handled (the aggregator's). Changed only by the aggregator,
    which then calls :meth:`configure`; the rest runs per event."""

    def __init__(self, failed: Callable[[Any], None]) -> None:
        self.listeners: tuple[EventListener, ...] = ()
        self.followers: tuple[Follower, ...] = ()
        #: (handler, payload, timestamp) of the events recorded and not yet followed.
        self.pending: collections.deque[tuple[FollowerHandler, dict[str, Any], float]] = \
            collections.deque()
        self._failed = failed

    def configure(self, receivers: Iterable[tuple[str, Any]], exemplars: frozenset[str],
                  queue_batch: int) -> None:
        """Tell each ``(signal name, receiver)`` how to receive now: queued or in line,
        its followers' handlers, and whether the span current at each send is read
        (the signals in ``exemplars``: they observe histograms, which keep them)."""
        followers = self.followers
        all_in_line = bool(self.listeners) or any(f.wait_limit <= 1 for f in followers)
        in_line = frozenset().union(*(f.in_line for f in followers))
        span_ids = followers[0].span_ids if followers else None
        limit = min([queue_batch] + [f.wait_limit for f in followers])
        for name, receiver in receivers:
            capture = span_ids if name in exemplars else None
            receiver.configure(
                record_in_line=all_in_line or name in in_line,
                handler=self._combined([f.follower_handlers[name] for f in followers
                                        if name in f.follower_handlers]),
                send_handler=self._combined([f.send_handlers[name] for f in followers
                                             if name in f.send_handlers]),
                capture=capture, queue_limit=limit)

    def _combined(self, handlers: list[FollowerHandler]) -> FollowerHandler | None:
        """The followers' handlers (or send handlers: the same shape) of one signal as
        one, each one's exception counted apart (None when there is none)."""
        if len(handlers) <= 1:
            return handlers[0] if handlers else None

        def each(fields: dict[str, Any], ts: float) -> None:
            for handler in handlers:
                try:
                    handler(fields, ts)
                except Exception:
                    self.failed()
        return each

    def failed(self) -> None:
        """A follower's handler raised (being handled): counted as a failed listener."""
        self._failed(self.failed)

    def run_recorded(self) -> None:
        """Run the followers' handlers of the events just recorded, in order (the
        caller holds the aggregator's lock)."""
        items = self.pending
        while items:
            follow, fields, ts = items.popleft()
            try:
                follow(fields, ts)
            except Exception:
                self.failed()

    def before_events(self) -> None:
        """Each follower's :meth:`Follower.before_events` (under the lock)."""
        for follower in self.followers:
            try:
                follower.before_events()
            except Exception:
                self.failed()

    def notify(self, signal_name: str, fields: dict[str, Any], ts: float) -> None:
        """Pass an accepted event to every listener (on the sender's thread, after the
        update, outside the lock)."""
        for listener in self.listeners:
            try:
                listener(signal_name, fields, ts)
            except Exception:
                self._failed(listener)
