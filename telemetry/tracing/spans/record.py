"""What a span is while the tracer builds it, and once it has ended.

:class:`telemetry.tracing.tracer.SignalTracer` knows every span's start and end from the
signals, so a span needs none of what a live OpenTelemetry SDK span carries (a
context object, bounded attribute maps with a lock each, value checks, start hooks):

* :class:`SpanStub` is a span that records nothing: its ids, trace flags, trace
  state and whether it came from another process. Unsampled spans and remote
  parents (a ``traceparent`` field) are stubs; children follow their decision and
  propagation passes them on.
* :class:`SpanRecord` is an open, sampled span: a stub plus its name, parent, start,
  a plain attribute dict, events and status.
* a **finished span** is a plain tuple (:data:`FIELDS`), made once when the span
  ends, or at once for a span complete when first seen (a decision, a state save).
  A tuple costs a fraction of an SDK ``ReadableSpan`` to make, and it is what the
  OTLP encoder (:mod:`exporters.otlp.fastpath.span_encoding`) reads: at once, when its
  exporter writes spans as they end (compiled builds; the span queue then holds the
  bytes), else from the span queue.
  :func:`to_readable` turns one into the SDK's ``ReadableSpan``, for span processors
  and exporters that expect SDK spans.

Imports the OpenTelemetry API and SDK: only loaded when tracing is on.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationInfo, InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

#: An empty OpenTelemetry context: what an SDK sampler gets for a root span.
EMPTY_CONTEXT = Context()
_SAMPLED = int(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)

#: The fields of a finished span, in tuple order:
#:
#: ``origin``       the :class:`Origin` (resource and instrumentation scope)
#: ``name``         the span name
#: ``trace_id``, ``span_id``  ints
#: ``parent``       the parent's :class:`SpanStub` (or record), None for a root
#: ``trace_state``  a ``TraceState`` or None
#: ``start_ns``, ``end_ns``   epoch nanoseconds
#: ``attributes``   a dict of str, bool, int or float values
#: ``events``       None or a list of ``(name, timestamp_ns, attributes)``
#: ``dropped_events``  events pushed out by the event limit
#: ``status``       None (unset) or the description of an ERROR status
#: ``flags``        the span's W3C trace flags (sampled, random trace id)
FIELDS = ("origin", "name", "trace_id", "span_id", "parent", "trace_state", "start_ns",
          "end_ns", "attributes", "events", "dropped_events", "status", "flags")

#: A finished span; see :data:`FIELDS`.
Finished = tuple

try:  # compiled builds: a finished span is not tracked by the garbage collector
    from telemetry.tracing.spans.untrack import untracked
except ImportError:  # a pure-Python build leaves it tracked
    untracked = None


class Origin(NamedTuple):
    """Where spans come from: what the SDK puts on every ``ReadableSpan`` of a tracer."""

    resource: Resource
    scope: InstrumentationScope | None
    info: InstrumentationInfo | None


class SpanStub:
    """A span that records nothing: its context is all children and propagation need."""

    __slots__ = ("_context", "_otel_context", "flags", "remote", "sampled", "span_id",
                 "trace_id", "trace_state")

    #: Whether the span keeps attributes and events (class-wide, read per event).
    recording = False

    def __init__(self, trace_id: int, span_id: int, flags: int,
                 trace_state: TraceState | None = None, remote: bool = False,
                 otel_context: Context | None = None) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.flags = flags
        self.sampled = bool(flags & _SAMPLED)
        self.trace_state = trace_state
        self.remote = remote
        self._context: SpanContext | None = None
        self._otel_context = otel_context

    @property
    def context(self) -> SpanContext:
        """The OpenTelemetry ``SpanContext`` (made on first use: propagation, SDK export)."""
        if self._context is None:
            self._context = SpanContext(self.trace_id, self.span_id, self.remote,
                                        TraceFlags(self.flags), self.trace_state)
        return self._context

    def get_span_context(self) -> SpanContext:
        return self.context

    def otel_context(self) -> Context:
        """This span as an OpenTelemetry ``Context``: what SDK samplers take as the parent."""
        if self._otel_context is None:
            self._otel_context = trace.set_span_in_context(trace.NonRecordingSpan(self.context),
                                                           EMPTY_CONTEXT)
        return self._otel_context

    def is_recording(self) -> bool:
        return self.recording

    def set_attribute(self, key: str, value: Any) -> None:
        """Nothing to record."""

    def add_event(self, name: str, attributes: dict[str, Any], timestamp_ns: int) -> None:
        """Nothing to record."""

    def set_error(self, description: str) -> None:
        """Nothing to record."""

    def end(self, end_ns: int) -> None:
        """Nothing to export."""


class SpanRecord(SpanStub):
    """An open span that is recorded: what its finished tuple will hold."""

    __slots__ = ("attributes", "builder", "dropped_events", "events", "name", "parent",
                 "start_ns", "status")

    recording = True

    def __init__(self, builder: Any, name: str, trace_id: int, span_id: int, flags: int,
                 trace_state: TraceState | None, parent: SpanStub | None,
                 attributes: dict[str, Any], start_ns: int) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.flags = flags
        self.sampled = True
        self.remote = False
        self.trace_state = trace_state
        self.builder = builder
        self.name = name
        self.parent = parent
        self.attributes = attributes
        self.start_ns = start_ns
        self.events: list[tuple[str, int, dict[str, Any]]] | None = None
        self.dropped_events = 0
        self.status: str | None = None

    @property
    def context(self) -> SpanContext:
        """The OpenTelemetry ``SpanContext`` (made on each use: propagation only)."""
        return SpanContext(self.trace_id, self.span_id, False, TraceFlags(self.flags),
                           self.trace_state)

    def otel_context(self) -> Context:
        return trace.set_span_in_context(trace.NonRecordingSpan(self.context), EMPTY_CONTEXT)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, attributes: dict[str, Any], timestamp_ns: int) -> None:
        """Keep the event; beyond the span's event limit the oldest goes, and is counted."""
        builder = self.builder
        if self.events is None:
            self.events = []
        elif len(self.events) >= builder.max_events:
            if not self.events:  # a limit of 0: no event is kept
                self.dropped_events += 1
                return
            del self.events[0]
            self.dropped_events += 1
        self.events.append((name, timestamp_ns, builder.capped(attributes, event=True)))

    def set_error(self, description: str) -> None:
        self.status = description

    def end(self, end_ns: int) -> None:
        """Export the span; the record must not be used afterwards."""
        builder = self.builder
        span = (builder.origin, self.name, self.trace_id, self.span_id, self.parent,
                self.trace_state, self.start_ns, end_ns, self.attributes, self.events,
                self.dropped_events, self.status, self.flags)
        queue = builder.queue
        if len(queue) < builder.quiet_below:  # builder.emit, without a call
            write = builder.write
            queue.append(write(span) if write is not None else
                         untracked(span) if untracked is not None else span)
        else:
            builder.emit(span)


class UnsampledRecord(SpanRecord):
    """A span a custom sampler records without sampling it (``RECORD_ONLY``): its
    children are not sampled either, and processors see it unsampled."""

    __slots__ = ()

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sampled = False


def to_readable(span: Finished) -> ReadableSpan:
    """The SDK's ``ReadableSpan`` for a finished span (what an SDK span gives its
    processors when it ends)."""
    (origin, name, trace_id, span_id, parent, trace_state, start_ns, end_ns, attributes,
     events, dropped_events, status, flags) = span
    context = SpanContext(trace_id, span_id, False, TraceFlags(flags), trace_state)
    event_list: BoundedList | tuple = ()
    if events or dropped_events:
        event_list = BoundedList(None)
        event_list.extend(Event(event_name, dict(event_attributes), timestamp)
                          for event_name, timestamp, event_attributes in events or ())
        event_list.dropped = dropped_events
    # positional: ReadableSpan's order, unchanged since instrumentation_scope came last
    return ReadableSpan(
        name, context, parent.context if parent is not None else None, origin.resource,
        dict(attributes), event_list, (), SpanKind.INTERNAL, origin.info,
        _UNSET if status is None else Status(StatusCode.ERROR, status), start_ns, end_ns,
        origin.scope)
