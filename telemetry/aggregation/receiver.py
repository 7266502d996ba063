"""The receiver the aggregator connects to each signal: the per-event path.

An event is recorded by one function, ``record`` (made per signal, below): the fields
every signal accepts (``workflow_id`` checked once per workflow, ``timestamp`` in line
for the plain case), then the signal's fast path or its payload check and handler
(:data:`~telemetry.aggregation.handlers.FAST_PATHS`, ``HANDLERS``), then the event
counter, then the follower's handler of the signal (the tracer's), all under the
aggregator's lock. When it runs depends on who follows or listens:

* **Queued**, the common case: the receiver appends ``(record, fields, monotonic time
  of the send, exemplar ids)`` to the aggregator's queue and returns. The queue is
  recorded in order, under one hold of the lock (``Aggregator.record_queued``), by the sender
  whose event fills it to :data:`QUEUE_BATCH` and by every read first
  (:meth:`~telemetry.aggregation.aggregator.Aggregator.run_pending`), so a read sees
  every event sent before it. Recording events back to back, rather than one between
  every few lines of the orchestrator's own work, keeps the interpreter's working set
  in the CPU caches: on the reference workflow that takes about a third off the
  in-line cost per event (``benchmarks/``, overhead). A send is then one append: no
  lock, nothing a signal handler or finalizer sending on this thread could interrupt.
  While the aggregator is a signal's only receiver, the signal's ``send`` is the
  receiver's own (``send_for``, see :class:`~telemetry.signals.YoloSignal`), which
  appends the event itself when nothing else is to be done at the send.
  While a follower keeps exemplars, the span current at the send is read then and
  queued with the event (:class:`~telemetry.aggregation.series.ExemplarSource`); a
  follower's send handler of the signal runs then too, under the lock (the tracer
  opens or leaves the sending thread's live trace context).
* **In line**, for the signals a follower needs whole on the sender's thread (the
  tracer's errors), and for every signal while a listener is attached (it is called
  on the sender's thread after the update): the events queued before are recorded
  first, then this one, under the lock; re-entry from this thread is deferred
  (:mod:`telemetry.aggregation.reentry`). Followers and listeners:
  :mod:`telemetry.aggregation.followers`.

Nothing here raises into the sender but an interrupt, and no lock survives one.
Everything a receiver needs per event is bound once, in the closure, when it is made.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from time import time as _wall_clock
from typing import TYPE_CHECKING, Any

from telemetry import catalogue as cat
from telemetry import validation as check
from telemetry.aggregation.followers import FollowerHandler, SendHandler
from telemetry.aggregation.handlers.table import FAST_PATHS, Handler
from telemetry.signals import SignalSpec
from telemetry.validation import InvalidEvent

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.aggregation.series import CounterCell

log = logging.getLogger("telemetry.aggregator")

#: The queue length at which the sender records the queue (its events' payloads stay
#: alive until then). Past about 256 events a batch gains nothing measurable, and a
#: batch holds the lock for a few hundred microseconds. A follower may ask for less
#: (:attr:`~telemetry.aggregation.followers.Follower.wait_limit`).
QUEUE_BATCH = 256

#: In line, every n-th event of a signal is timed to estimate the handlers' own cost
#: cheaply (a queued batch is timed whole).
HANDLER_SAMPLE_EVERY = 64

#: What ``record`` returns for an event it dropped (invalid, or a handler failed).
DROPPED = object()

def _workflow_id(fields: dict[str, Any]) -> Any:
    """The ``workflow_id`` field, read as ``_plain_time`` reads it."""
    return fields.get("workflow_id")


def _plain_time(fields: dict[str, Any], known_workflow_id: str | None) -> bool:
    """Whether an event has no ``timestamp`` and no ``workflow_id`` but the one that
    passed its check last: then ``record`` has nothing of the common fields to check.

    A function of its own so that a compiled build reads the fields as the dict they
    are (``receiver.pxd``), not through a call of the method ``get``.
    """
    workflow_id = fields.get("workflow_id")
    return fields.get("timestamp") is None and (
        workflow_id is None or workflow_id is known_workflow_id)


def _timestamp(fields: dict[str, Any], window_s: float) -> float | None:
    """The event's ``timestamp`` (None: absent, the event is now), checked as
    :func:`telemetry.validation.timestamp` checks it; raises InvalidEvent.

    The plain case (a float within ``window_s`` of now) is decided here, with the
    fields read as the dict they are and the clock called without a lookup in a
    compiled build (``receiver.pxd``): nearly half the events carry a timestamp.
    """
    ts = fields.get("timestamp")
    if ts is None or (type(ts) is float and -window_s <= ts - _wall_clock() <= window_s):
        return ts
    return check.timestamp(fields, window_s)


def _count(cell: CounterCell) -> None:
    """One more event in ``cell``: a C structure's field in a compiled build
    (``receiver.pxd``), where ``cell.value += 1`` on a closure's variable would read
    and write it as an attribute."""
    cell.value += 1


def make_receiver(aggregator: Aggregator, spec: SignalSpec,
                  handler: Handler) -> Callable[..., None]:
    """The blinker receiver of ``spec``'s signal, recording into ``aggregator``."""
    signal_name = spec.name
    check_payload = check.payload_check(spec)
    fast_path = FAST_PATHS.get(signal_name)
    events = aggregator._series[cat.EVENTS].cell((signal_name,))
    guard, state, clock = aggregator._guard, aggregator.state, aggregator._clock
    lock, held_here, pending = guard.lock, guard.held_here, guard.pending
    acquire, release = lock.acquire, lock.release
    queue = aggregator._queue
    enqueue = queue.append
    countdown = HANDLER_SAMPLE_EVERY
    window_s = aggregator.timestamp_window_s
    # The last workflow id that passed its check. A workflow's events carry the same
    # str object, so only a new one is checked (a str is immutable: the same object
    # passes again). Only an id no longer than a label is remembered: a megabyte id
    # must not stay alive in this closure after its event.
    checked_workflow_id: str | None = None
    remembered_length = aggregator.state.max_label_length
    # How this signal is received now (see the module doc), set by ``configure``.
    in_line = False
    follow: FollowerHandler | None = None
    at_send: SendHandler | None = None
    span_ids: Callable[[], Any] | None = None
    batch = QUEUE_BATCH
    exemplar = aggregator._exemplar
    followers = aggregator._followers
    to_follow = followers.pending.append

    # Whether a send is only queued: nothing else to do on the sender's thread.
    only_queued = True

    def configure(*, record_in_line: bool, handler: FollowerHandler | None,
                  send_handler: SendHandler | None, capture: Callable[[], Any] | None,
                  queue_limit: int) -> None:
        """Receive in line or queued; ``handler`` follows each accepted event in order,
        ``send_handler`` when it is sent; ``capture`` reads the span each event's
        exemplars link to, when sent."""
        nonlocal in_line, follow, at_send, span_ids, batch, only_queued
        in_line, follow, at_send = record_in_line, handler, send_handler
        span_ids, batch = capture, queue_limit
        only_queued = not in_line and at_send is None and span_ids is None

    def checked_timestamp(fields: dict[str, Any]) -> float | None:
        """The checks of the fields every signal accepts; the event's timestamp (None:
        now). Raises InvalidEvent."""
        nonlocal checked_workflow_id
        workflow_id = _workflow_id(fields)
        if workflow_id is not None and workflow_id is not checked_workflow_id:
            check.name(fields, "workflow_id")
            if type(workflow_id) is str and len(workflow_id) <= remembered_length:
                checked_workflow_id = workflow_id
        return _timestamp(fields, window_s)

    def record(fields: dict[str, Any], now: float) -> Any:
        """Record one event (the caller holds the lock); its timestamp (None: now), or
        :data:`DROPPED` when it was invalid or its handler failed (counted, logged
        once per reason)."""
        try:
            # checked_timestamp() only when needed: its call costs about 3 % of a
            # handoff's recording.
            ts = None
            if not _plain_time(fields, checked_workflow_id):
                ts = checked_timestamp(fields)
            if fast_path is None or not fast_path(state, fields, ts, now):
                handler(state, check_payload(fields), ts, now)
            _count(events)
        except InvalidEvent as invalid:
            aggregator._count_invalid(signal_name, invalid.reason)
            return DROPPED
        except Exception:
            aggregator._count_invalid(signal_name, "internal_error")
            log.exception("telemetry failed to handle %s", signal_name)
            return DROPPED
        if follow is not None:  # run by the caller once its events are recorded
            to_follow((follow, fields, now + state.wall_offset if ts is None else ts))
        return ts

    def receive_fields(sender: Any, fields: dict[str, Any]) -> None:
        if not in_line:
            now = clock()
            ids = span_ids and span_ids()  # before the send handler changes the span
            if at_send is not None and not handle_at_send(fields, now):
                return  # re-entry: received again once this thread's update is over
            enqueue((record, fields, now, ids))
            if len(queue) >= batch:
                aggregator.run_pending()
        else:
            record_in_line(fields)

    def send_time(fields: dict[str, Any], now: float) -> float | None:
        """The event's timestamp if it will be accepted (checked as ``record`` checks
        it, which counts it if not), else None."""
        try:
            ts = checked_timestamp(fields)
            check_payload(fields)
        except Exception:
            return None
        return now + state.wall_offset if ts is None else ts

    def run_send_handler(fields: dict[str, Any], ts: float) -> None:
        """The followers' send handler (the caller holds the lock)."""
        try:
            at_send(fields, ts)  # type: ignore[misc]
        except Exception:
            followers.failed()

    def handle_at_send(fields: dict[str, Any], now: float) -> bool:
        """Run the send handler on this thread now, under the lock, without recording
        the queued events first; False when deferred (re-entry)."""
        if held_here():
            guard.defer(functools.partial(receive_fields, None, fields))
            return False
        ts = send_time(fields, now)
        if ts is None:
            return True
        try:
            try:  # taken inside the `try`: see telemetry.aggregation.reentry
                acquire()
                if aggregator._connected:
                    followers.before_events()
                    run_send_handler(fields, ts)
            finally:
                try:  # noqa: SIM105
                    release()
                except RuntimeError:  # interrupted before it was taken
                    pass
        finally:
            if pending:
                aggregator.run_pending()
        return True

    def record_in_line(fields: dict[str, Any]) -> None:
        nonlocal countdown
        if held_here():  # re-entry from this thread's own update: see the module doc
            guard.defer(functools.partial(record_in_line, fields))
            return
        try:
            if queue:  # the events sent before this one first
                aggregator.record_queued()
            now = clock()
            ids = span_ids and span_ids()
            sent_at = send_time(fields, now) if at_send is not None else None
            countdown -= 1
            timed = countdown <= 0  # not `== 0`: threads may race past zero
            if timed:
                countdown = HANDLER_SAMPLE_EVERY
                started = time.perf_counter()
            try:  # taken inside the `try`: see telemetry.aggregation.reentry
                acquire()
                if not aggregator._connected:  # stopped while this event waited
                    return
                if follow is not None or at_send is not None:
                    followers.before_events()
                if sent_at is not None:
                    run_send_handler(fields, sent_at)
                exemplar.ids, exemplar.at = ids, now + state.wall_offset
                ts = record(fields, now)
                followers.run_recorded()
                if timed:
                    aggregator._handler_time.value += (
                        (time.perf_counter() - started) * HANDLER_SAMPLE_EVERY)
            finally:
                try:  # noqa: SIM105 (a `with` costs what the pair saves)
                    release()
                except RuntimeError:  # interrupted before it was taken
                    pass
            if ts is not DROPPED and followers.listeners:
                followers.notify(signal_name, fields, time.time() if ts is None else ts)
        finally:
            if pending:  # what a signal handler or finalizer deferred meanwhile
                aggregator.run_pending()

    def receive(sender: Any, /, **fields: Any) -> None:
        # ``sender`` is positional-only: a payload field named "sender" is a field.
        receive_fields(sender, fields)

    def send_for(signal: Any) -> Callable[..., list[tuple[Any, Any]]]:
        """``signal``'s ``send`` while this is its only receiver (see YoloSignal):
        blinker's dispatch and this receiver's call in one, so the common case (the
        event is queued) is one call for the sender."""
        result = (receive, None)

        def send(sender: Any = None, /, *, _async_wrapper: Any = None,
                 **fields: Any) -> list[tuple[Any, Any]]:
            if signal.is_muted:
                return []
            if only_queued:  # receive_fields, the queued case written out
                enqueue((record, fields, clock(), None))
                if len(queue) >= batch:
                    aggregator.run_pending()
            else:
                receive_fields(sender, fields)
            return [result]
        return send

    # YoloSignal calls this directly with the send's keyword arguments as one
    # dict when the aggregator is the signal's only receiver.
    receive.receive_fields = receive_fields  # type: ignore[attr-defined]
    receive.send_for = send_for  # type: ignore[attr-defined]
    receive.configure = configure  # type: ignore[attr-defined]
    receive.__name__ = f"receive_{signal_name.replace('.', '_')}"
    return receive
