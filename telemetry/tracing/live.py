"""Live OpenTelemetry context: while one of our spans is open, it is the current span.

The tracer builds its spans after the fact, but other instrumentation (an LLM
client, httpx, a database driver, the application's own
``tracer.start_as_current_span``) starts its spans from OpenTelemetry's *current
context*. So when a workflow or an agent activation opens, the tracer sets the
current context of the thread or asyncio task that sent the signal to carry that
span (:func:`enter`), and puts back what was there when it closes (:func:`leave`).
OpenTelemetry keeps the context in a ``contextvars`` variable, so every thread and
every asyncio task has its own.

The span put in the context is a :class:`LiveSpan`: a span holding our span's ids,
as a ``traceparent`` would, which passes what other code records on it to our span
while that is open and recorded. It stays valid only while our span is open. When
our span ends by any other path (its closing signal sent from another thread or
task, its workflow's end, the open-span table's TTL or bound, ``stop()``), the live
span goes inert at once, everywhere: asked for its context, it answers
with the innermost of the spans below it that is still open, else with no span, so
a span left open by a missing ``agent_deactivated`` never becomes the parent of
unrelated work after it was ended.

:func:`enter` also skips inert spans below the new one, so a context in which
closing signals never arrive holds no more than the spans still open.

A decision is signalled only when it is over, so it has no open span to put in the
context; :func:`open_leaf` gives one to a block that will send the decision
(:meth:`telemetry.tracing.traced.TracedOrchestrator.decision`): a span id chosen in
advance, sent with the signal as its ``span_context`` field, which the tracer then
uses as the decision span's id (drawn with the provider's id generator).
:func:`current_parent` gives the tracer an application span current when a workflow
starts, as the workflow span's parent.

Imports OpenTelemetry's API: only loaded when it is installed.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, INVALID_SPAN_CONTEXT, StatusCode

from telemetry.tracing.spans.attributes import exception_attributes, exception_type

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

    from telemetry.tracing.spans.record import SpanStub

_get_current = otel_context.get_current
_attach = otel_context.attach
_get_span = trace.get_current_span
_set_span = trace.set_span_in_context
_Context = otel_context.Context

#: The variable the context lives in, and the key of the current span: read and set
#: directly, as OpenTelemetry's own functions do (a function call less each way, a
#: third of what entering and leaving cost). Another runtime context
#: (``OTEL_PYTHON_CONTEXT``) or a change of these names keeps the public functions.
_VAR: Any = getattr(getattr(otel_context, "_RUNTIME_CONTEXT", None), "_current_context", None)
_SPAN_KEY: Any = getattr(getattr(trace, "propagation", None), "_SPAN_KEY", None)
if not isinstance(_VAR, ContextVar) or not isinstance(_SPAN_KEY, str) or \
        trace.get_current_span(_Context({_SPAN_KEY: INVALID_SPAN})) is not INVALID_SPAN:
    _VAR = _SPAN_KEY = None
#: The variable's methods and the context's ``get`` (a dict's), unbound: each call
#: skips the method lookup, which was most of what entering and leaving cost compiled.
_var_get, _var_set, _context_get = ContextVar.get, ContextVar.set, dict.get


class LiveSpan:
    """One of our open spans as the current span: its context while it is open, the
    context of the nearest open span below it once it has ended.

    While a recorded span of ours (a sampled workflow or agent span) is open, what
    other code records on the current span (``set_attribute``, ``add_event``,
    ``set_status``, ``record_exception``) goes into it, through its tracer
    (``owner``, which checks the values and takes its lock); once it has ended, or for
    an unsampled span or a decision block's span (made when ``decision_made``
    arrives), those calls do nothing, as on any non-recording span.

    An OpenTelemetry ``Span`` (registered as one: ``isinstance(span, Span)`` holds)
    with the API of a non-recording span, but not a subclass of the API's classes: in
    a compiled build it is a C structure (``live.pxd``), so the sends that read the
    current span (every event, for exemplars) and the signals that enter or leave one
    reach its fields without a lookup.
    """

    __slots__ = ("below", "ids", "open", "owner", "saved", "stub")

    def __init__(self, stub: SpanStub, below: Any, saved: Any = None,
                 owner: Any = None) -> None:
        self.stub = stub
        #: The span that was current when this one was entered (never an inert LiveSpan).
        self.below = below
        #: The whole context current when this one was entered, put back as it was when
        #: the span ends on the thread or task that entered it (as ``detach`` would);
        #: None when an inert live span was skipped (it is not kept alive).
        self.saved = saved
        #: Set to False (under the tracer's lock) when our span ends, however it ends.
        self.open = True
        #: (trace id, span id) when sampled: what histogram exemplars keep, made once.
        self.ids = (stub.trace_id, stub.span_id) if stub.sampled else None
        #: The tracer that made the span (records changes, draws ids), or None.
        self.owner = owner

    def get_span_context(self) -> SpanContext:
        span = self
        while type(span) is LiveSpan:
            if span.open:
                return span.stub.context
            span = span.below
        return span.get_span_context() if span is not None else INVALID_SPAN_CONTEXT

    # -- recording, through the tracer (telemetry.tracing.tracer.SignalTracer.record_live)

    def is_recording(self) -> bool:
        return self.open and self.stub.recording and self.owner is not None

    def set_attribute(self, key: str, value: Any) -> None:
        if self.is_recording():
            self.owner.record_live(self, "attributes", {key: value})

    def set_attributes(self, attributes: Any) -> None:
        if self.is_recording():
            self.owner.record_live(self, "attributes", dict(attributes))

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if self.is_recording():
            self.owner.record_live(self, "event", name, dict(attributes or {}), timestamp)

    def set_status(self, status: Any, description: str | None = None) -> None:
        if self.is_recording():
            self.owner.record_live(self, "status", status, description)

    def record_exception(self, exception: BaseException, attributes: Any = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        if self.is_recording():
            self.owner.record_live(self, "exception", exception, dict(attributes or {}),
                                   timestamp)

    # -- what a non-recording span ignores: our span ends with its closing signal

    def add_link(self, context: Any, attributes: Any = None) -> None:
        """Links are not kept."""

    def update_name(self, name: str) -> None:
        """The name is the tracer's."""

    def end(self, end_time: int | None = None) -> None:
        """Our span ends with its closing signal, not here."""

    def __enter__(self) -> LiveSpan:
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.end()

    def __repr__(self) -> str:
        return f"LiveSpan({self.stub.span_id:016x}, open={self.open})"


trace.Span.register(LiveSpan)


def _open_below(span: Any) -> Any:
    """``span`` without the inert live spans on top of it (None: no span)."""
    while type(span) is LiveSpan:
        live = span
        if live.open:
            return live
        span = live.below
    return None if span is INVALID_SPAN else span


def enter(stub: SpanStub, owner: Any = None) -> LiveSpan:
    """Make ``stub`` the current span of the calling thread or task (see the module doc);
    ``owner``: the tracer that made it (see :class:`LiveSpan`)."""
    var = _VAR
    if var is None:
        current = _get_current()
        live = LiveSpan(stub, _open_below(_get_span(current)), None, owner)
        _attach(_set_span(live, current))
        return live
    current = _var_get(var)
    below = _context_get(current, _SPAN_KEY)
    if type(below) is LiveSpan and not below.open:
        live = LiveSpan(stub, _open_below(below), None, owner)
    else:
        live = LiveSpan(stub, below, current, owner)
    _var_set(var, _Context({**current, _SPAN_KEY: live}) if current
             else _Context({_SPAN_KEY: live}))
    return live


def leave(live: LiveSpan) -> None:
    """``live``'s span has ended: it goes inert, and if the calling thread or task has
    it current (or below live spans entered after it), what was current before it
    comes back. Called under the tracer's lock; never raises for a foreign context."""
    live.open = False
    var = _VAR
    current = _var_get(var) if var is not None else _get_current()
    span = _context_get(current, _SPAN_KEY) if var is not None else _get_span(current)
    while type(span) is LiveSpan:
        if span is live:
            below = live.below
            saved = live.saved
            if saved is not None and (type(below) is not LiveSpan or below.open):
                _var_set(var, saved)  # (saved is only set with the variable at hand)
                return
            below = _open_below(below)
            if var is None:
                _attach(_set_span(below or INVALID_SPAN))
            elif below is None:
                _var_set(var, _Context({k: v for k, v in current.items() if k != _SPAN_KEY}))
            else:
                _var_set(var, _Context({**current, _SPAN_KEY: below}))
            return
        inner = span
        span = inner.below


def sampled_span_ids() -> tuple[int, int] | None:
    """(trace id, span id) of the current span if it is sampled (ours or any other
    instrumentation's): what a histogram observation of an event sent now keeps as
    its exemplar (:class:`telemetry.aggregation.series.ExemplarSource`)."""
    span = _context_get(_var_get(_VAR), _SPAN_KEY) if _VAR is not None else _get_span()
    while type(span) is LiveSpan:
        live = span
        if live.open:
            return live.ids
        span = live.below
    if span is None:
        return None
    context = span.get_span_context()
    return (context.trace_id, context.span_id) if context.trace_flags.sampled else None


def current_parent() -> SpanStub | None:
    """The current span when it is another instrumentation's (an application span
    around ``workflow_started``), as a parent for our span; None when there is none,
    or when it is one of ours (our spans find their parents in the open-span table)."""
    span = _open_below(_VAR.get().get(_SPAN_KEY) if _VAR is not None else _get_span())
    if span is None or type(span) is LiveSpan:
        return None
    context = span.get_span_context()
    if not context.is_valid:
        return None
    from telemetry.tracing.spans.record import EMPTY_CONTEXT, SpanStub

    return SpanStub(context.trace_id, context.span_id, int(context.trace_flags),
                    context.trace_state, context.is_remote, _set_span(span, EMPTY_CONTEXT))


def open_leaf() -> tuple[LiveSpan, str] | None:
    """A span id for a span that is signalled when it ends (a decision), made current
    now under the current live span: the live span, and the W3C ``traceparent``-form
    ``span_context`` field to send with the signal. None when no span of ours is
    current (the tracer would not know where the span goes)."""
    parent = _get_span()
    if type(parent) is not LiveSpan or not parent.open:
        return None
    from telemetry.tracing.spans.builder import new_span_id
    from telemetry.tracing.spans.record import SpanStub

    stub, owner = parent.stub, parent.owner
    # the provider's id generator when the tracer has one of its own
    span_id = owner.new_span_id() if owner is not None else new_span_id()
    leaf = SpanStub(stub.trace_id, span_id, stub.flags, stub.trace_state)
    field = f"00-{leaf.trace_id:032x}-{leaf.span_id:016x}-{leaf.flags & 0xFF:02x}"
    return enter(leaf, owner), field


def leaf_span_id(field: Any, trace_id: int) -> int:
    """The span id a ``span_context`` field chose, if it is well formed and in the trace
    ``trace_id`` (the parent the tracer found); 0 otherwise (a new id is drawn)."""
    if type(field) is not str or len(field) != 55:
        return 0
    try:
        if int(field[3:35], 16) != trace_id:
            return 0
        return int(field[36:52], 16)
    except ValueError:
        return 0


def record_change(record: Any, builder: Any, capture: bool, what: str,
                  args: tuple) -> None:
    """Apply what other code recorded on a live span to its open ``record`` (see
    :meth:`telemetry.tracing.tracer.SignalTracer.record_live`), within the limits of
    ``builder`` (a :class:`telemetry.tracing.spans.builder.SpanBuilder`); ``capture``:
    whether an exception's message and stack trace may be kept
    (``tracing.capture_content``)."""
    if what == "attributes":
        attributes = record.attributes
        for key, value in builder.clean(args[0]).items():
            if key in attributes or len(attributes) < builder.max_attributes:
                attributes[key] = value
    elif what == "event":
        name, attributes, timestamp = args
        record.add_event(str(name), builder.clean(attributes, event=True),
                         timestamp if type(timestamp) is int else time.time_ns())
    elif what == "status":
        status, description = args
        code = getattr(status, "status_code", status)
        if code is StatusCode.ERROR:
            record.set_error(str(description or getattr(status, "description", None) or ""))
    elif what == "exception":
        exception, attributes, timestamp = args
        if not isinstance(exception, BaseException):
            return
        recorded = (exception_attributes(exception) if capture
                    else {"exception.type": exception_type(exception)})
        recorded.update(builder.clean(attributes, event=True))
        record.add_event("exception", recorded,
                         timestamp if type(timestamp) is int else time.time_ns())
