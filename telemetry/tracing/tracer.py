"""Spans built from the same signals the metrics come from.

:class:`SignalTracer` follows the aggregator
(:class:`telemetry.aggregation.followers.Follower`): its handler of each signal runs
after the metrics update of every accepted event, under the aggregator's lock, with
the event's timestamp, and turns the workflow's life into spans, so an orchestrator
gets traces without writing any tracing code. Every span uses the signals' own
timestamps (``start_time``/``end_time``), so a trace is exact even though it is built
after the fact, on whichever thread records the event.

What each signal does is in :mod:`telemetry.tracing.handlers.events` (docs/tracing.md lists
every span, attribute and event).

Spans that open (workflows, agents, handoffs) live in a bounded table keyed by
``workflow_id`` (and agent, :mod:`telemetry.tracing.spans.table`); one not closed within
``tracing.open_span_ttl_s``, or pushed out by ``tracing.max_open_spans``, is ended at
its last activity, marked ``yolo.span.unfinished`` and counted as
``dropped{component="tracer",reason="abandoned"}``. Work for unsampled spans stops at
this bookkeeping.

Spans are not SDK ``Span`` objects: they are made after the fact, so
:mod:`telemetry.tracing.spans.builder` keeps a light record while one is open and hands a
finished tuple (:mod:`telemetry.tracing.spans.record`) to the provider's span processor when
it ends, with the provider's sampler, resource and id rules.

The per-event path is kept short: names are made safe once per distinct value (a
small cache, not a scan of every field on every event), a closing event is a table
lookup, and a span that is not sampled costs only that bookkeeping. With the span
batch processor (:mod:`exporters.otlp.batch`), events wait in the aggregator's queue as
they do for the metrics alone and are traced with them, in batches, in order, before
anything needs their spans (:meth:`SignalTracer._batch_with`); what must happen when a
signal is sent (the live context, the span current for exemplars) happens then.

This module imports the OpenTelemetry SDK: it is only loaded when tracing is on.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from telemetry.aggregation.handlers.operations import CallRuns, HandoffWindows
from telemetry.aggregation.reentry import then_deferred
from telemetry.tracing.handlers.events import SpanSignals
from telemetry.tracing.live import LiveSpan, record_change, sampled_span_ids
from telemetry.tracing.spans.builder import SpanBuilder, remote_parent
from telemetry.tracing.spans.table import UNFINISHED, OpenSpans

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Tracer

    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.config import TracingConfig

__all__ = ["UNFINISHED", "SignalTracer", "active_tracer", "remote_parent"]

#: Signals handled when they arrive: an error carries an exception, whose frames
#: should not stay alive while it waits. The signals that open or close a live context
#: do that part when they are sent
#: (:meth:`~telemetry.tracing.handlers.live_signals.LiveSignals.live_handlers`); the rest waits.
IN_LINE = frozenset({"yolo.error_occurred"})


class SignalTracer(SpanSignals):
    """Turns accepted signals into spans with ``tracer``'s pipeline (an SDK tracer: its
    provider's sampler, resource, id generator and span processors); register with
    :meth:`attach`.

    Thread-safe: its state is guarded by the aggregator's lock (its handlers run under
    it; its reads take it with ``with``), and an ended span is only appended to the
    span processor's queue under it.
    """

    #: Signals handled in line (:class:`telemetry.aggregation.followers.Follower`).
    in_line = IN_LINE
    #: Where an event's exemplars link to, read when it is sent.
    span_ids = staticmethod(sampled_span_ids)

    def __init__(self, tracer: Tracer, aggregator: Aggregator, config: TracingConfig,
                 clock: Callable[[], float] = time.monotonic, max_text_length: int = 128) -> None:
        # The fields are described in telemetry.tracing.handlers.state.TracerState.
        self._tracer = SpanBuilder(tracer, max_text=max_text_length)
        self._max_text = max_text_length
        self._texts = {}
        self._decision_names = {}
        self._agent_names = {}
        self._handoff_span_names = {}
        self._call_names = {}
        self._tool_names = {}
        self._aggregator = aggregator
        ops = aggregator.state.ops
        self._loops = HandoffWindows(ops.loop_window, ops.max_workflows, ops.max_label_length)
        self._runs = CallRuns(ops.max_agents, ops.max_label_length)
        self._repeat_threshold = ops.repeat_threshold
        self._capture = config.capture_content
        self._live = config.live_context
        self._inherit = config.sampler.startswith("parentbased_") or config.sampler == "always_off"
        self._guard = aggregator._guard
        self._clock = clock
        self._open = OpenSpans(config.max_open_spans, config.open_span_ttl_s, clock,
                               lambda reason: aggregator.count_dropped("tracer", reason))
        #: Signal name -> handler, what the aggregator runs after each event's update,
        #: and what runs when a signal is sent (the live context): see
        #: :class:`telemetry.aggregation.followers.Follower`.
        self.send_handlers = self.live_handlers() if self._live else {}
        self.follower_handlers: dict[str, Callable[[dict, float], None]] = self.handlers()
        self._lives = {}
        self._opened_key = f"\x00yolo.tracing.opened.{id(self):x}"  # this tracer's own
        self._tracer.on_sink_change = lambda: self._batch_with(self._tracer.batch_processor())
        self._attached = False
        #: How many events may wait in the aggregator's queue: none unless the spans go
        #: to a batch processor that asks for them before it exports (:meth:`_batch_with`).
        self.wait_limit = 0
        self._feeding: Any = None

    # -- wiring --------------------------------------------------------------------

    def attach(self) -> None:
        """Start receiving events, and answer :func:`telemetry.tracing.propagation.inject`."""
        if not self._attached:
            self._attached = True
            _ACTIVE.append(self)
            self._aggregator.histogram_features(exemplars=True)  # link to the trace
            self._batch_with(self._tracer.batch_processor())

    @then_deferred
    def close(self) -> None:
        """Stop receiving events and end every open span (counted as ``unfinished``).

        Called while this thread is inside the tracer (a signal handler or finalizer
        that interrupted one of its events), the spans are ended right after that
        event instead, when the table is whole again.
        """
        if self._attached:
            self._attached = False
            self._aggregator.unfollow(self)  # the queued events are followed first
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            self._aggregator.histogram_features(exemplars=False)
            self._batch_with(None)
        if self._guard.held_here():
            self._guard.defer(self.close)
            return
        with self._guard.lock:
            self._open.end_all("unfinished")
            for live in self._lives.values():
                live.open = False
            self._lives.clear()

    # -- waiting events ------------------------------------------------------------

    def _batch_with(self, processor: Any) -> None:
        """Let events wait in the aggregator's queue when ``processor`` (the provider's
        only one) takes a *feeder*: a function it calls before an export on its
        schedule and before a flush, here the aggregator's
        :meth:`~telemetry.aggregation.aggregator.Aggregator.run_pending`, which records
        the queue and so makes the waiting events' spans in time for that export. Fewer
        events wait than fill one of its batches, so a span is queued no later than it
        would have been exported. (An export woken by a full batch sends full batches
        of the spans queued: the waiting events' spans would come after them.) None,
        or another processor: every event is handled on arrival."""
        run_pending = self._aggregator.run_pending
        if self._feeding is not None:
            self._feeding.remove_feeder(run_pending)
            self._feeding = None
        limit = getattr(processor, "direct_queue", ((), 0))[1]
        if limit > 1 and callable(getattr(processor, "add_feeder", None)):
            processor.add_feeder(run_pending)
            self._feeding = processor
            self.wait_limit = limit
        else:
            self.wait_limit = 0
        if self._attached:
            self._aggregator.follow(self)

    def before_events(self) -> None:
        """End the open spans whose time is up, before the next events are handled."""
        if self._open.next_expiry <= self._clock():
            self._open.expire_due()

    def new_span_id(self) -> int:
        """A span id for a span chosen in advance (:func:`telemetry.tracing.live.open_leaf`),
        from the provider's id generator."""
        return self._tracer.new_span_id()  # called from any thread, as the SDK calls it

    @then_deferred
    def record_live(self, live: LiveSpan, what: str, *args: Any) -> None:
        """What other code records on one of our live spans (:class:`LiveSpan`):
        ``attributes`` (a dict), ``event`` (name, attributes, time), ``status``
        (status, description), ``exception`` (exception, attributes, time). Kept
        only while the span is open; values OpenTelemetry does not allow are dropped,
        and the span limits apply. Called inside one of this tracer's events (a signal
        handler or finalizer), it waits until that event is over.
        """
        guard = self._guard
        if guard.held_here():
            guard.defer(functools.partial(self.record_live, live, what, *args))
            return
        with guard.lock:
            if live.open and live.stub.recording:
                record_change(live.stub, self._tracer, self._capture, what, args)

    @property
    def _lock(self) -> Any:
        """The tracer's lock (re-entrant; take it with ``with`` only)."""
        return self._guard.lock

    @property
    def open_spans(self) -> int:
        self._aggregator.run_pending()
        return len(self._open)

    @then_deferred
    def current_span_context(self, workflow_id: str | None,
                             agent: str | None = None) -> trace.SpanContext | None:
        """The most specific open span of a workflow: its latest open handoff, else the
        agent's (or latest) open agent span, else the workflow span."""
        self._aggregator.run_pending()
        with self._lock:
            texts = self._texts
            if workflow_id is not None:
                workflow_id = texts.get(workflow_id) or self._learn(workflow_id)
            if agent:
                agent = texts.get(agent) or self._learn(agent)
            children = list(self._open.children(workflow_id))
            entry = next((c for c in children if c.key[0] == "h"), None)
            if entry is None and agent:
                entry = self._open.get(("a", workflow_id, agent))
            if entry is None and not agent:
                entry = next((c for c in children if c.key[0] == "a"), None)
            if entry is None:
                entry = self._open.get(("w", workflow_id))
            return entry.span.get_span_context() if entry is not None else None


#: Tracers attached in this process, newest last; :mod:`telemetry.tracing.propagation` asks them.
_ACTIVE: list[SignalTracer] = []

if hasattr(os, "register_at_fork"):
    # A forked child's inherited telemetry is inert (it no longer receives signals), and a
    # tracer lock held by another parent thread would stay held: forget those tracers.
    os.register_at_fork(after_in_child=_ACTIVE.clear)


def active_tracer() -> SignalTracer | None:
    """The most recently attached tracer, if tracing is running in this process."""
    return _ACTIVE[-1] if _ACTIVE else None
