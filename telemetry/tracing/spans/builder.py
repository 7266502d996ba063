"""Spans made after the fact, with an SDK tracer's sampler, ids, limits and processors.

:class:`SpanBuilder` takes what it needs from an OpenTelemetry SDK ``Tracer`` (its
provider's sampler, id generator, span limits, resource, scope and span processors)
and makes the light spans of :mod:`telemetry.tracing.spans.record`:

* ``start_span`` gives a :class:`~telemetry.tracing.spans.record.SpanRecord` for a sampled
  span that stays open, a :class:`~telemetry.tracing.spans.record.SpanStub` otherwise;
* ``leaf`` makes a span complete when first seen (a decision, a state save) and
  hands it on at once if it is sampled;
* every finished span goes to the provider's processors. A processor that takes
  finished tuples (``emit_record``, :mod:`exporters.otlp.batch`) gets the tuple
  itself, or the span already written by its exporter's writer when it has one
  (``span_writer``: an OTLP exporter of a compiled build writes the span's protobuf
  as it ends, here, while what the span refers to is in this thread's cache, and the
  queue holds a few hundred bytes the collector need not track instead of a tuple,
  a dict and a few numbers); any other gets the SDK's ``ReadableSpan`` through
  ``on_end``, as from an SDK span, so the SDK's own processors and exporters work
  unchanged.

Sampling is the provider's sampler's decision. The samplers ``tracing.sampler``
names (always on or off, trace id ratio, and their parent-based forms with default
delegates) are decided here from the trace id and the parent's flags, exactly as
their ``should_sample`` decides, without building the SDK's context and result
objects; any other sampler is asked through ``should_sample`` as the SDK asks it.
The trace state is the parent's, as the SDK's samplers return it. Ids are random
(``random.getrandbits``, never zero) unless the provider has its own id generator.
Processors' ``on_start`` is not called: spans are made whole at their end, and the
processors used here ignore it.

A ``traceparent`` field becomes a stub holding the remote context
(:func:`remote_parent`). What other code records on a live span is applied by
:func:`telemetry.tracing.live.record_change`, with the limits kept here.

Attribute values are the tracer's own (str, int, float, bool); strings are cut at
``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`` (``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` for
events) or :data:`MAX_VALUE_LENGTH`, and a span keeps its first
``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` attributes, as the SDK's span does (the SDK's
``SpanLimits`` reads these variables). Span names are not attributes: the SDK does
not cut them, and only :data:`MAX_VALUE_LENGTH` bounds them here. When the tracer's
texts are known to be shorter (``max_text``) and its spans have fewer attributes
than the limit, nothing is checked per span. A span keeps at most
``OTEL_SPAN_EVENT_COUNT_LIMIT`` events (the oldest are dropped and counted in the
span, as the SDK does).

Not thread-safe: the tracer calls it under its lock. Imports the SDK: only loaded
when tracing is on.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, Tracer
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from telemetry.tracing.spans.attributes import clean_value
from telemetry.tracing.spans.record import (
    EMPTY_CONTEXT,
    Finished,
    Origin,
    SpanRecord,
    SpanStub,
    UnsampledRecord,
    to_readable,
    untracked,
)

#: Cap on string attribute values when the environment sets no limit. Identifiers are
#: far shorter; this bounds what one odd signal field can cost an export.
MAX_VALUE_LENGTH = 4096

_PROPAGATOR = TraceContextTextMapPropagator()
_INTERNAL = SpanKind.INTERNAL
_SAMPLED = int(TraceFlags.SAMPLED)
_RANDOM = int(TraceFlags.RANDOM_TRACE_ID)
_LOW_64 = TraceIdRatioBased.TRACE_ID_LIMIT
_getrandbits = random.getrandbits
#: More attributes than any span of the tracer has (exception details included):
#: below this count limit, every span's attributes are counted.
MOST_ATTRIBUTES = 32
#: What :attr:`SpanBuilder.queue` is when spans cannot be queued directly.
_NO_QUEUE: tuple = ()

#: A built-in sampler's decision as data: True (sample), False (drop), or an int
#: bound: sample when the trace id's low 64 bits are below it.
Rule = bool | int


def _rule(sampler: Sampler) -> Rule | None:
    """The decision rule of a built-in sampler, None for any other sampler."""
    kind = type(sampler)
    if kind is StaticSampler:
        decision = sampler._decision  # type: ignore[attr-defined]
        if decision is Decision.RECORD_AND_SAMPLE:
            return True
        if decision is Decision.DROP:
            return False
        return None  # RECORD_ONLY: recorded but not sampled; left to the SDK path
    if kind is TraceIdRatioBased:
        return sampler.bound  # type: ignore[attr-defined]
    return None


def compile_sampler(sampler: Sampler) -> tuple[Rule, Rule, Rule, Rule, Rule] | None:
    """Rules for (root, remote sampled parent, remote unsampled parent, local sampled
    parent, local unsampled parent), or None when the sampler must be asked."""
    if type(sampler) is ParentBased:
        rules = tuple(_rule(getattr(sampler, name, None)) for name in (
            "_root", "_remote_parent_sampled", "_remote_parent_not_sampled",
            "_local_parent_sampled", "_local_parent_not_sampled"))
        return None if None in rules else rules  # type: ignore[return-value]
    rule = _rule(sampler)
    return None if rule is None else (rule, rule, rule, rule, rule)


class SpanBuilder:
    """Makes spans with the sampler, ids, limits, resource, scope and processors of an
    SDK tracer. ``max_text``: the longest text the caller puts in names and attributes
    (None: unknown, every span's strings are checked against the limit)."""

    def __init__(self, tracer: Tracer, max_text: int | None = None) -> None:
        self.sampler = tracer.sampler
        info = tracer.instrumentation_info
        scope = getattr(tracer, "_instrumentation_scope", None) or InstrumentationScope(
            info.name, info.version, info.schema_url)
        #: What every finished span of this builder carries (resource, scope).
        self.origin = Origin(tracer.resource, scope, info)
        self._ids = tracer.id_generator
        self._fast_ids = type(self._ids) is RandomIdGenerator
        self._random_root = _RANDOM if self._ids.is_trace_id_random() else 0
        limits = getattr(tracer, "_span_limits", None) or SpanLimits()
        max_events = limits.max_events
        self.max_events: int = sys.maxsize if max_events is None else max_events
        self.max_length: int = limits.max_span_attribute_length or MAX_VALUE_LENGTH
        self.max_event_length: int = limits.max_attribute_length or MAX_VALUE_LENGTH
        max_attributes = limits.max_span_attributes
        self.max_attributes: int = sys.maxsize if max_attributes is None else max_attributes
        #: Names are at most two texts and a few words ("handoff {a} -> {b}").
        self._check_lengths = (max_text is None or self.max_length < 2 * max_text + 32
                               or self.max_attributes < MOST_ATTRIBUTES)
        self._rules = compile_sampler(self.sampler)
        #: A local child of a sampled/unsampled parent copies its flags and trace state.
        self._copy_local = (self._rules is not None and self._rules[3] is True
                            and self._rules[4] is False)
        self._processor = tracer.span_processor
        self._processors: Any = None
        #: Writes a finished span as it ends, when the processor's exporter can
        #: (``span_processor.span_writer``): what the queue then holds instead of the tuple.
        self.write: Callable[[Finished], bytes] | None = None
        self._emit_record: Callable[[Any], None] | None = None
        self._sink: Callable[[Finished], None] = self._emit_readable
        self._takes_tuples = False
        self.emit: Callable[[Finished], None] = self._sink
        #: The processor's span queue while fewer than ``quiet_below`` spans wait in
        #: it: a finished span may be appended to it directly (see :meth:`_resolve_sink`).
        self.queue: Any = _NO_QUEUE
        self.quiet_below = -1
        #: Called when the processors change (the tracer batches events only for ours).
        self.on_sink_change: Callable[[], None] | None = None
        self._resolve_sink()

    # -- making spans ------------------------------------------------------------------

    def start_span(self, name: str, parent: SpanStub | None, attributes: dict[str, Any],
                   start_ns: int) -> SpanStub:
        """An open span under ``parent`` (None: a root): a record if it is recorded."""
        if parent is not None and self._copy_local and not parent.remote:
            # the common case: decided by the parent's flags, without a call
            span_id = (self._fast_ids and _getrandbits(64)) or self._span_id()
            if parent.sampled:
                return SpanRecord(self, name, parent.trace_id, span_id, parent.flags,
                                  parent.trace_state, parent, attributes, start_ns)
            return SpanStub(parent.trace_id, span_id, parent.flags, parent.trace_state)
        trace_id, flags, state, recorded = self._decide(name, parent, attributes)
        if not recorded:
            return SpanStub(trace_id, self._span_id(), flags, state)
        record = SpanRecord if flags & _SAMPLED else UnsampledRecord
        return record(self, name, trace_id, self._span_id(), flags, state, parent, attributes,
                      start_ns)

    def leaf(self, name: str, parent: SpanStub | None, attributes: dict[str, Any],
             start_ns: int, end_ns: int, span_id: int = 0) -> None:
        """A span complete when first seen: handed on at once if it is recorded.
        ``span_id``: an id chosen in advance (:func:`telemetry.tracing.live.open_leaf`),
        0 to draw one."""
        if parent is not None and self._copy_local and not parent.remote:
            if parent.sampled:  # the common case, decided without a call
                span = (self.origin, name, parent.trace_id,
                        span_id or (self._fast_ids and _getrandbits(64)) or self._span_id(), parent,
                        parent.trace_state, start_ns, end_ns, attributes, None, 0, None,
                        parent.flags)
                queue = self.queue
                if len(queue) < self.quiet_below:  # emit, without a call
                    write = self.write
                    queue.append(write(span) if write is not None else
                                 untracked(span) if untracked is not None else span)
                else:
                    self.emit(span)
            return
        trace_id, flags, state, recorded = self._decide(name, parent, attributes)
        if recorded:
            self.emit((self.origin, name, trace_id, span_id or self._span_id(), parent, state,
                       start_ns, end_ns, attributes, None, 0, None, flags))

    # -- processors --------------------------------------------------------------------

    def _resolve_sink(self) -> None:
        """Point :attr:`emit` at the processors: finished tuples straight to the one
        processor that takes them, else SDK spans to every processor; through
        :meth:`_capped` when names and attributes may be over the length limit.

        Checked when the builder is made and again on every root span (once per
        trace), so a processor added to the provider later takes effect from the next
        trace and the per-span path checks nothing.
        """
        processors = getattr(self._processor, "_span_processors", None)
        self._processors = processors
        self.queue, self.quiet_below = _NO_QUEUE, -1
        self.write = None
        if processors is not None and len(processors) == 1 and callable(
                getattr(processors[0], "emit_record", None)):
            self._emit_record = processors[0].emit_record
            self._sink = self._emit_finished
            self._takes_tuples = True
            span_writer = getattr(processors[0], "span_writer", None)
            self.write = span_writer(self.origin) if span_writer is not None else None
            direct = getattr(processors[0], "direct_queue", None)
            if direct is not None and not self._check_lengths:
                # (queue, n): appending to queue while it holds fewer than n spans is
                # all emit_record would do (no batch to announce, no queue limit)
                self.queue, self.quiet_below = direct
        else:
            self._sink = self._emit_readable
            self._takes_tuples = False
        #: ``emit(span)``: give a finished span to the provider's processors.
        self.emit = self._capped if self._check_lengths else self._sink
        if self.on_sink_change is not None:
            self.on_sink_change()

    def batch_processor(self) -> Any:
        """The one processor, when it takes finished tuples (else None)."""
        return self._processors[0] if self._takes_tuples else None

    def _emit_readable(self, span: Finished) -> None:
        self._processor.on_end(to_readable(span))

    def _emit_finished(self, span: Finished) -> None:
        """Queue what the processor takes for a finished span: the span written
        (:attr:`write`), else the tuple, untracked in a compiled build
        (:func:`~telemetry.tracing.spans.record.untracked`). :meth:`leaf` and
        :meth:`SpanRecord.end <telemetry.tracing.spans.record.SpanRecord.end>` do the
        same without a call while the queue is far from full."""
        write = self.write
        self._emit_record(write(span) if write is not None else
                          untracked(span) if untracked is not None else span)

    def _capped(self, span: Finished) -> None:
        name, attributes = span[1], self.capped(span[8])
        if len(attributes) > self.max_attributes:  # the first ones stay, as in the SDK
            kept = dict(list(attributes.items())[: self.max_attributes])
            span = (*span[:8], kept, *span[9:])
        if len(name) > MAX_VALUE_LENGTH:
            span = (span[0], name[:MAX_VALUE_LENGTH], *span[2:])
        self._sink(span)

    # -- sampling and ids -------------------------------------------------------------

    def _decide(self, name: str, parent: SpanStub | None,
                attributes: dict[str, Any]) -> tuple[int, int, Any, bool]:
        """(trace id, trace flags, trace state, recorded) of a new span."""
        if parent is None:
            if self._processors is not getattr(self._processor, "_span_processors", None):
                self._resolve_sink()  # a processor was added since the last trace
            trace_id, state, rand = self._trace_id(), None, self._random_root
        else:
            trace_id, state, rand = parent.trace_id, parent.trace_state, parent.flags & _RANDOM
        rules = self._rules
        if rules is not None:
            if parent is None:
                rule = rules[0]
            elif parent.remote:
                rule = rules[1] if parent.sampled else rules[2]
            else:
                rule = rules[3] if parent.sampled else rules[4]
            sampled = rule if type(rule) is bool else (trace_id & _LOW_64) < rule
            return trace_id, (_SAMPLED if sampled else 0) | rand, state, sampled
        context = parent.otel_context() if parent is not None else EMPTY_CONTEXT
        # A sampler may add attributes to its result; the ones used here do not.
        result = self.sampler.should_sample(context, trace_id, name, _INTERNAL, attributes)
        decision = result.decision
        sampled = decision.is_sampled()
        # A processor taking finished tuples exports sampled spans only (as the SDK's
        # batch processor does): a span recorded but not sampled is not worth making.
        recorded = sampled if self._takes_tuples else decision.is_recording()
        return trace_id, (_SAMPLED if sampled else 0) | rand, result.trace_state, recorded

    def _trace_id(self) -> int:
        if self._fast_ids:
            trace_id = _getrandbits(128)
            while not trace_id:
                trace_id = _getrandbits(128)
            return trace_id
        return self._ids.generate_trace_id()

    def new_span_id(self) -> int:
        """A span id from the provider's id generator (random when it is the SDK's)."""
        return self._span_id()

    def _span_id(self) -> int:
        if self._fast_ids:
            span_id = _getrandbits(64)
            while not span_id:
                span_id = _getrandbits(64)
            return span_id
        return self._ids.generate_span_id()

    # -- limits ------------------------------------------------------------------------

    def clean(self, attributes: Mapping[str, Any], event: bool = False) -> dict[str, Any]:
        """Attributes from other code (the live span's ``set_attribute``...): the ones
        OpenTelemetry allows (a non-empty str key; a str, bool, int, float or a
        sequence of one of them), strings cut at the length limit; others dropped."""
        limit = self.max_event_length if event else self.max_length
        clean = {}
        for key, value in attributes.items():
            if type(key) is not str or not key:
                continue
            value = clean_value(value, limit)
            if value is not None:
                clean[key] = value
        return clean

    def capped(self, attributes: dict[str, Any], event: bool = False) -> dict[str, Any]:
        """``attributes`` with string values cut at the length limit (in place)."""
        limit = self.max_event_length if event else self.max_length
        for key, value in attributes.items():
            if type(value) is str and len(value) > limit:
                attributes[key] = value[:limit]
        return attributes


def new_span_id() -> int:
    """A random span id (never zero), as the SDK's ``RandomIdGenerator`` makes them."""
    span_id = _getrandbits(64)
    while not span_id:
        span_id = _getrandbits(64)
    return span_id


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
    if not span_context.is_valid:
        return None
    return SpanStub(span_context.trace_id, span_context.span_id, int(span_context.trace_flags),
                    span_context.trace_state, span_context.is_remote, context)
