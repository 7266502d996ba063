"""Spans built after the fact, handed to the SDK's span processor when they end.

:class:`telemetry.tracing.SignalTracer` knows every span's start and end times from
the signals, so it needs nothing of a live OpenTelemetry span but its identity
while it is open. The SDK's ``Tracer.start_span`` and ``Span`` do much more (a
context object, bounded attribute maps with a lock each, value checks, span limits,
start hooks), which costs tens of microseconds per span. Here a span is:

* :class:`SpanRecord` while it is open and sampled: name, span context, parent
  context, start, a plain attribute dict, events, status. Ending it builds the SDK's
  ``ReadableSpan`` once and gives it to the tracer provider's span processor
  (``on_end``), exactly what an SDK span does when it ends, so the batch processor,
  the OTLP exporter and the drop counting downstream see no difference.
* :class:`SpanStub` for a span that is not recorded (not sampled, or a remote parent
  from a ``traceparent``): its span context only, so children follow its sampling
  decision and propagation can pass it on.
* nothing at all for a span that is complete when it is first seen (a decision, a
  state save): :meth:`SpanBuilder.leaf` makes the ``ReadableSpan`` directly.

The sampling decision is the tracer provider's sampler's ``should_sample``, asked
with the parent's context as the SDK asks it. A ``ParentBased`` sampler with its
default delegates decides a local child by copying the parent's sampled flag, so
that is done without asking. Ids are random (``random.getrandbits``, never zero)
unless the provider has its own id generator. Processors' ``on_start`` is not
called: spans are made whole at their end, and the processors used here ignore it.

A ``traceparent`` field becomes a :class:`SpanStub` holding the remote context
(:func:`remote_parent`), and an exception gets the event attributes the SDK's
``record_exception`` gives it (:func:`exception_attributes`).

Attribute values are the tracer's own (str, int, float, bool); strings, span names
included, are cut at ``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT``
(``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` for events) or :data:`MAX_VALUE_LENGTH`, and a
span keeps at most ``OTEL_SPAN_EVENT_COUNT_LIMIT`` events (the oldest are dropped and
counted in the span, as the SDK does).

Not thread-safe: the tracer calls it under its lock. Imports the SDK: only loaded
when tracing is on.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, Tracer
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

#: Cap on string attribute values when the environment sets no limit. Identifiers are
#: far shorter; this bounds what one odd signal field can cost an export.
MAX_VALUE_LENGTH = 4096

_EMPTY = Context()
_PROPAGATOR = TraceContextTextMapPropagator()
_INTERNAL = SpanKind.INTERNAL
_UNSET = Status(StatusCode.UNSET)
_getrandbits = random.getrandbits
#: Trace flags by (sampled, random trace id), shared by every span.
_FLAGS = {(sampled, rand): TraceFlags((TraceFlags.SAMPLED if sampled else 0)
                                      | (TraceFlags.RANDOM_TRACE_ID if rand else 0))
          for sampled in (False, True) for rand in (False, True)}


class SpanStub:
    """A span that records nothing: its context is all children and propagation need."""

    __slots__ = ("_otel_context", "context")

    def __init__(self, context: SpanContext, otel_context: Context | None = None) -> None:
        self.context = context
        self._otel_context = otel_context

    def otel_context(self) -> Context:
        """This span as an OpenTelemetry ``Context``: what samplers take as the parent."""
        if self._otel_context is None:
            self._otel_context = trace.set_span_in_context(trace.NonRecordingSpan(self.context),
                                                           _EMPTY)
        return self._otel_context

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: Any) -> None:
        """Nothing to record."""

    def add_event(self, name: str, attributes: dict[str, Any], timestamp_ns: int) -> None:
        """Nothing to record."""

    def set_error(self, description: str) -> None:
        """Nothing to record."""

    def end(self, end_ns: int) -> None:
        """Nothing to export."""


class SpanRecord(SpanStub):
    """An open, sampled span: what its ``ReadableSpan`` will hold."""

    __slots__ = ("attributes", "builder", "events", "name", "parent", "start_ns", "status")

    def __init__(self, builder: SpanBuilder, name: str, context: SpanContext,
                 parent: SpanContext | None, attributes: dict[str, Any], start_ns: int) -> None:
        self.context = context
        self._otel_context = None
        self.builder = builder
        self.name = name
        self.parent = parent
        self.attributes = attributes
        self.start_ns = start_ns
        self.events: BoundedList | None = None
        self.status = _UNSET

    def is_recording(self) -> bool:
        return True

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, attributes: dict[str, Any], timestamp_ns: int) -> None:
        if self.events is None:
            self.events = BoundedList(self.builder.max_events)
        self.events.append(Event(name, self.builder.capped(attributes, event=True),
                                 timestamp_ns))

    def set_error(self, description: str) -> None:
        self.status = Status(StatusCode.ERROR, description)

    def end(self, end_ns: int) -> None:
        """Export the span; the record must not be used afterwards."""
        self.builder.finish(self.name, self.context, self.parent, self.attributes,
                            self.events, self.status, self.start_ns, end_ns)


class SpanBuilder:
    """Makes spans with the sampler, resource, scope and processor of an SDK tracer."""

    def __init__(self, tracer: Tracer) -> None:
        self.sampler = tracer.sampler
        self.resource = tracer.resource
        self.processor = tracer.span_processor
        self.info = info = tracer.instrumentation_info
        self.scope = getattr(tracer, "_instrumentation_scope", None) or InstrumentationScope(
            info.name, info.version, info.schema_url)
        self._ids = tracer.id_generator
        self._fast_ids = type(self._ids) is RandomIdGenerator
        self._random_root = self._ids.is_trace_id_random()
        limits = getattr(tracer, "_span_limits", None) or SpanLimits()
        self.max_events: int | None = limits.max_events
        self.max_length: int = limits.max_span_attribute_length or MAX_VALUE_LENGTH
        self.max_event_length: int = limits.max_attribute_length or MAX_VALUE_LENGTH
        sampler = self.sampler
        #: A plain parent-based sampler: a local child is sampled iff its parent is.
        self._copy_local = (isinstance(sampler, ParentBased)
                            and getattr(sampler, "_local_parent_sampled", None) is ALWAYS_ON
                            and getattr(sampler, "_local_parent_not_sampled", None) is ALWAYS_OFF)

    # -- making spans ------------------------------------------------------------------

    def start_span(self, name: str, parent: SpanStub | None, attributes: dict[str, Any],
                   start_ns: int) -> SpanStub:
        """An open span under ``parent`` (None: a root): a record if sampled."""
        context, recorded = self._decide(name, parent, attributes)
        if not recorded:
            return SpanStub(context)
        return SpanRecord(self, name, context, parent.context if parent is not None else None,
                          attributes, start_ns)

    def leaf(self, name: str, parent: SpanStub | None, attributes: dict[str, Any],
             start_ns: int, end_ns: int) -> None:
        """A span complete when first seen: exported at once if sampled."""
        context, recorded = self._decide(name, parent, attributes)
        if recorded:
            self.finish(name, context, parent.context if parent is not None else None,
                        attributes, None, _UNSET, start_ns, end_ns)

    def finish(self, name: str, context: SpanContext, parent: SpanContext | None,
               attributes: dict[str, Any], events: BoundedList | None, status: Status,
               start_ns: int, end_ns: int) -> None:
        """Give the processor the ``ReadableSpan``, as an SDK span does when it ends."""
        limit = self.max_length
        for key, value in attributes.items():
            if type(value) is str and len(value) > limit:
                attributes[key] = value[:limit]
        # positional: ReadableSpan's order, unchanged since instrumentation_scope came last
        self.processor.on_end(ReadableSpan(
            name if len(name) <= limit else name[:limit], context, parent, self.resource,
            attributes, events or (), (), _INTERNAL, self.info, status, start_ns, end_ns,
            self.scope))

    # -- sampling and ids -------------------------------------------------------------

    def _decide(self, name: str, parent: SpanStub | None,
                attributes: dict[str, Any]) -> tuple[SpanContext, bool]:
        """The new span's context, and whether it is recorded (the sampler's decision)."""
        if parent is None:
            trace_id = self._trace_id()
            result = self.sampler.should_sample(_EMPTY, trace_id, name, _INTERNAL, attributes)
            rand = self._random_root
        else:
            up = parent.context
            trace_id = up.trace_id
            if self._copy_local and not up.is_remote:  # local parents' flags are _FLAGS'
                return (SpanContext(trace_id, self._span_id(), False, up.trace_flags,
                                    up.trace_state), up.trace_flags.sampled)
            rand = bool(up.trace_flags & TraceFlags.RANDOM_TRACE_ID)
            result = self.sampler.should_sample(parent.otel_context(), trace_id, name,
                                                _INTERNAL, attributes)
        decision = result.decision
        # A sampler may add attributes to its result; the ones used here do not.
        return (SpanContext(trace_id, self._span_id(), False,
                            _FLAGS[decision.is_sampled(), rand], result.trace_state),
                decision.is_recording())

    def _trace_id(self) -> int:
        if self._fast_ids:
            trace_id = _getrandbits(128)
            while not trace_id:
                trace_id = _getrandbits(128)
            return trace_id
        return self._ids.generate_trace_id()

    def _span_id(self) -> int:
        if self._fast_ids:
            span_id = _getrandbits(64)
            while not span_id:
                span_id = _getrandbits(64)
            return span_id
        return self._ids.generate_span_id()

    # -- limits ------------------------------------------------------------------------

    def capped(self, attributes: dict[str, Any], event: bool = False) -> dict[str, Any]:
        """``attributes`` with string values cut at the length limit (in place; inlined
        in :meth:`finish`)."""
        limit = self.max_event_length if event else self.max_length
        for key, value in attributes.items():
            if type(value) is str and len(value) > limit:
                attributes[key] = value[:limit]
        return attributes


def remote_parent(fields: Mapping[str, Any]) -> SpanStub | None:
    """The span a ``traceparent`` field (W3C) points at, or None if absent/invalid."""
    traceparent = fields.get("traceparent")
    if not isinstance(traceparent, str) or not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    tracestate = fields.get("tracestate")
    if isinstance(tracestate, str) and tracestate:
        carrier["tracestate"] = tracestate
    context = _PROPAGATOR.extract(carrier)
    span_context = trace.get_current_span(context).get_span_context()
    return SpanStub(span_context, context) if span_context.is_valid else None


def exception_type(exception: BaseException) -> str:
    """``module.QualName`` as the SDK's record_exception spells ``exception.type``."""
    cls = type(exception)
    module = cls.__module__
    return f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__


def exception_attributes(exception: BaseException) -> dict[str, str]:
    """The attributes the SDK's ``Span.record_exception`` gives an exception event."""
    return {"exception.type": exception_type(exception),
            "exception.message": _encodable(str(exception)),
            "exception.stacktrace": _encodable("".join(traceback.format_exception(exception))),
            "exception.escaped": "False"}


def _encodable(text: str) -> str:
    """``text`` with lone surrogates as "?": an OSError about an undecodable file name
    carries one, and a string that cannot be encoded fails its whole batch."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")
