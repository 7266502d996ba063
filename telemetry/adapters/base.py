"""What every framework adapter shares: the handle ``instrument()`` returns, and an
emitter that sends our signals on the framework's behalf without ever raising into it.

An adapter runs inside the framework's callbacks, so an exception there would break
the user's agent run: :meth:`AdapterEmitter.guard` catches it, counts it in
``yolo_telemetry_dropped_total{component="adapter_<framework>",reason="exception"}``
when telemetry is running (and in :attr:`AdapterEmitter.failures` always), and logs
the first one of each callback.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import blinker

log = logging.getLogger("telemetry.adapters")

F = TypeVar("F", bound=Callable[..., Any])


class Instrumentation:
    """The handle ``instrument()`` returns. :meth:`uninstrument` undoes what
    ``instrument()`` did (removes hooks, processors, listeners); it is idempotent and
    never raises. Also a context manager that uninstruments on exit."""

    def __init__(self, framework: str, undo: Callable[[], None]) -> None:
        self.framework = framework
        self._undo: Callable[[], None] | None = undo
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._undo is not None

    def uninstrument(self) -> None:
        with self._lock:
            undo, self._undo = self._undo, None
        if undo is None:
            return
        try:
            undo()
        except Exception:
            log.exception("telemetry could not fully uninstrument %s", self.framework)

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstrument()

    def __repr__(self) -> str:
        state = "active" if self.active else "uninstrumented"
        return f"<Instrumentation {self.framework} {state}>"


class AdapterEmitter:
    """Sends ``yolo.*`` signals for one framework; see the module doc.

    ``sender`` is what blinker passes as the sender of every signal (the adapter's
    name by default), so receivers can tell adapter events from an orchestrator's.
    """

    def __init__(self, framework: str, sender: Any = None) -> None:
        self.framework = framework
        self.sender = sender if sender is not None else f"adapter:{framework}"
        self.failures = 0
        self._logged: set[str] = set()

    def send(self, signal_name: str, **fields: Any) -> None:
        """Send ``signal_name`` with ``fields``; a receiver's failure is counted, not raised."""
        try:
            blinker.signal(signal_name).send(self.sender, **fields)
        except Exception:
            self._failed(f"send {signal_name}")

    def guard(self, func: F) -> F:
        """Wrap a framework callback so that its exceptions never reach the framework."""

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception:
                self._failed(func.__qualname__)
                return None

        return guarded  # type: ignore[return-value]

    def _failed(self, where: str) -> None:
        """Count the exception being handled and log the first one of each ``where``."""
        self.failures += 1
        _count_dropped(f"adapter_{self.framework}")
        if where not in self._logged:
            self._logged.add(where)
            log.exception("telemetry adapter for %s failed in %s; further failures are "
                          "only counted", self.framework, where)


def _count_dropped(component: str) -> None:
    from telemetry import runtime  # the running telemetry, if any; imported late: optional

    running = runtime.current()
    if running is not None:
        with contextlib.suppress(Exception):  # counting must not fail the framework either
            running.aggregator.count_dropped(component, "exception")


def active_trace_fields() -> dict[str, str]:
    """The ``traceparent`` of the OpenTelemetry span active in the caller's context, as
    signal fields, so the workflow span an adapter opens joins the trace the framework
    (or the application around it) already has instead of starting a second one.

    Empty when OpenTelemetry is not installed or no valid span is active.
    """
    try:
        from opentelemetry import trace
    except ImportError:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    fields = {"traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-"
                             f"{int(context.trace_flags):02x}"}
    if context.trace_state:
        fields["tracestate"] = context.trace_state.to_header()
    return fields


def call_key(arguments: Any) -> str | None:
    """A ``call_key`` for a tool call: a short digest of its arguments (a JSON string,
    or anything JSON can encode), never the arguments; None when there are none."""
    if arguments is None:
        return None
    if not isinstance(arguments, str):
        try:
            arguments = json.dumps(arguments, sort_keys=True, default=repr)
        except (TypeError, ValueError):
            return None
    return hashlib.blake2b(arguments.encode("utf-8", "replace"), digest_size=8).hexdigest()


def token_count(value: Any) -> int:
    """A framework's token count as our signals take it: a positive int, else 0."""
    return value if type(value) is int and value > 0 else 0
