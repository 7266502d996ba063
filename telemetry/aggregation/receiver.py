"""The receiver the aggregator connects to each signal: the per-event path.

On the sender's thread: the fields every signal accepts (``workflow_id`` checked once
per workflow, ``timestamp`` in line for the plain case), then, under the aggregator's
lock, the signal's fast path or its payload check and handler
(:data:`~telemetry.aggregation.handlers.FAST_PATHS`, ``HANDLERS``), then the event
counter. Nothing here raises into the sender but an interrupt, and no lock survives
one; re-entry from this thread is deferred (:mod:`telemetry.aggregation.reentry`).
Everything a receiver needs per event is bound once, in the closure, when it is made.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telemetry import catalogue as cat
from telemetry import validation as check
from telemetry.aggregation.handlers import FAST_PATHS, Handler
from telemetry.signals import SignalSpec
from telemetry.validation import InvalidEvent

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator

log = logging.getLogger("telemetry.aggregator")

#: Every n-th event of a signal is timed to estimate the handlers' own cost cheaply.
HANDLER_SAMPLE_EVERY = 64


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
    countdown = HANDLER_SAMPLE_EVERY
    window_s = aggregator.timestamp_window_s
    # The last workflow id that passed its check. A workflow's events carry the same
    # str object, so only a new one is checked (a str is immutable: the same object
    # passes again). Only an id no longer than a label is remembered: a megabyte id
    # must not stay alive in this closure after its event.
    checked_workflow_id: str | None = None
    remembered_length = aggregator.state.max_label_length

    def receive_fields(sender: Any, fields: dict[str, Any]) -> None:
        nonlocal countdown, checked_workflow_id
        if held_here():  # re-entry from this thread's own update: see the module doc
            guard.defer(functools.partial(receive_fields, sender, fields))
            return
        try:
            try:
                # The fields every signal accepts (signals.COMMON_OPTIONAL).
                workflow_id = fields.get("workflow_id")
                if workflow_id is not None and workflow_id is not checked_workflow_id:
                    check.name(fields, "workflow_id")
                    if type(workflow_id) is str and len(workflow_id) <= remembered_length:
                        checked_workflow_id = workflow_id
                ts = fields.get("timestamp")
                if ts is not None and not (  # the plain case in line, as check.timestamp
                        type(ts) is float and -window_s <= ts - time.time() <= window_s):
                    ts = check.timestamp(fields, window_s)
                now = clock()
                countdown -= 1
                if countdown <= 0:  # not `== 0`: threads may race past zero
                    countdown = HANDLER_SAMPLE_EVERY
                    record_timed(fields, ts, now)
                else:
                    try:  # taken inside the `try`: see telemetry.aggregation.reentry
                        acquire()
                        if not aggregator._connected:  # stopped while this event waited
                            return
                        if fast_path is None or not fast_path(state, fields, ts, now):
                            handler(state, check_payload(fields), ts, now)
                        events.value += 1
                    finally:
                        try:  # noqa: SIM105 (a `with` costs what the pair saves)
                            release()
                        except RuntimeError:  # interrupted before it was taken
                            pass
            except InvalidEvent as invalid:
                aggregator._count_invalid(signal_name, invalid.reason)
                return
            except Exception:
                aggregator._count_invalid(signal_name, "internal_error")
                log.exception("telemetry failed to handle %s", signal_name)
                return
            if aggregator._listeners:
                aggregator._notify(signal_name, fields, time.time() if ts is None else ts)
        finally:
            if pending:  # what a signal handler or finalizer deferred meanwhile
                aggregator.run_pending()

    def record_timed(fields: dict[str, Any], ts: float | None, now: float) -> None:
        """Every n-th event: the same update, timed for the handlers' own cost."""
        with lock:
            started = time.perf_counter()
            if not aggregator._connected:
                return
            if fast_path is None or not fast_path(state, fields, ts, now):
                handler(state, check_payload(fields), ts, now)
            events.value += 1
            aggregator._handler_time.value += (
                (time.perf_counter() - started) * HANDLER_SAMPLE_EVERY)

    def receive(sender: Any, /, **fields: Any) -> None:
        # ``sender`` is positional-only: a payload field named "sender" is a field.
        receive_fields(sender, fields)

    # YoloSignal calls this directly with the send's keyword arguments as one
    # dict when the aggregator is the signal's only receiver.
    receive.receive_fields = receive_fields  # type: ignore[attr-defined]
    receive.__name__ = f"receive_{signal_name.replace('.', '_')}"
    return receive
