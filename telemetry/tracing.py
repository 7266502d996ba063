"""Spans built from the same signals the metrics come from.

:class:`SignalTracer` is an aggregator listener: it sees every accepted event with
its timestamp and turns the workflow's life into spans, so an orchestrator gets
traces without writing any tracing code. Every span uses the signals' own
timestamps (``start_time``/``end_time``), so a trace is exact even though it is
built after the fact, on whatever thread sent the signal.

Layout (docs/tracing.md lists every name and attribute)::

    invoke_workflow {workflow_type}          workflow_started -> completed/failed
    ├── invoke_agent {agent}                 agent_activated -> agent_deactivated
    │   ├── decision {decision_type}         decision_made (duration_s)
    │   ├── context_refresh {agent}          context_refreshed (duration_s)
    │   └── events: exception, yolo.safety_blocked
    ├── handoff {from_agent} -> {to_agent}   handoff_started -> handoff_completed
    └── state_save / state_load              state_saved / state_loaded (duration_s)

Things with a duration are child spans (they take room on the waterfall and can be
searched by name); instants (errors, safety blocks) are events on the agent span,
which costs no span of its own and keeps them next to what the agent was doing.

Spans that open (workflows, agents, handoffs) live in a bounded table keyed by
``workflow_id`` (and agent, :mod:`telemetry.span_table`); one not closed within
``tracing.open_span_ttl_s``, or pushed out by ``tracing.max_open_spans``, is ended at
its last activity, marked ``yolo.span.unfinished`` and counted as
``dropped{component="tracer",reason="abandoned"}``. Work for unsampled spans stops at
this bookkeeping.

Spans are not SDK ``Span`` objects: they are made after the fact, so
:mod:`telemetry.span_builder` keeps a light record while one is open and gives the
tracer provider's span processor a finished ``ReadableSpan`` when it ends, with the
provider's sampler, resource and id rules.

This module imports the OpenTelemetry SDK: it is only loaded when tracing is on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from .series import sanitize_label_value
from .span_builder import SpanBuilder, SpanStub, exception_attributes, exception_type, remote_parent
from .span_table import UNFINISHED, OpenSpan, OpenSpans, ns

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Tracer

    from .aggregator import Aggregator
    from .config import TracingConfig

# Attribute names: OpenTelemetry GenAI conventions where one fits, yolo.* otherwise.
OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
CONVERSATION_ID = "gen_ai.conversation.id"
WORKFLOW_NAME = "gen_ai.workflow.name"
HANDOFF_SOURCE = "gen_ai.agent.handoff.source.name"
HANDOFF_TARGET = "gen_ai.agent.handoff.target.name"
ERROR_TYPE = "error.type"
WORKFLOW_ID = "yolo.workflow.id"
WORKFLOW_OUTCOME = "yolo.workflow.outcome"
FROM_AGENT = "yolo.handoff.from_agent"
TO_AGENT = "yolo.handoff.to_agent"
DECISION_TYPE = "yolo.decision.type"
SAFETY_RULE = "yolo.safety.rule"
CONTEXT_TOKENS = "yolo.context.tokens"
CONTEXT_ITEMS = "yolo.context.items"
STATE_SIZE = "yolo.state.size"
__all__ = ["UNFINISHED", "SignalTracer", "active_tracer", "remote_parent"]

#: Payload fields whose text ends up in span names and attributes.
_TEXT_FIELDS = ("workflow_id", "workflow_type", "agent", "from_agent", "to_agent",
                "decision_type", "error_type", "rule")

#: A parent for a span: the span (None: a root) and the earliest start it allows.
Parent = tuple[SpanStub | None, float]
_NO_PARENT: Parent = (None, 0.0)


class SignalTracer:
    """Turns accepted signals into spans with ``tracer``'s pipeline (an SDK tracer: its
    provider's sampler, resource, id generator and span processors); register with
    :meth:`attach`.

    Thread-safe: one lock around each event's bookkeeping (an ended span is only
    appended to the batch processor's queue under it).
    """

    def __init__(self, tracer: Tracer, aggregator: Aggregator, config: TracingConfig,
                 clock: Callable[[], float] = time.monotonic, max_text_length: int = 128) -> None:
        self._tracer = SpanBuilder(tracer)
        self._max_text = max_text_length
        self._aggregator = aggregator
        self._capture = config.capture_content
        #: With a parent-based sampler a child of an unsampled span is unsampled too,
        #: so we skip creating it at all.
        self._inherit = config.sampler.startswith("parentbased_") or config.sampler == "always_off"
        self._lock = threading.Lock()
        self._open = OpenSpans(config.max_open_spans, config.open_span_ttl_s, clock,
                               lambda reason: aggregator.count_dropped("tracer", reason))
        self._handlers: dict[str, Callable[[dict, float], None]] = {
            "yolo.workflow_started": self._workflow_started,
            "yolo.workflow_completed": self._workflow_completed,
            "yolo.workflow_failed": self._workflow_failed,
            "yolo.agent_activated": self._agent_activated,
            "yolo.agent_deactivated": self._agent_deactivated,
            "yolo.handoff_started": self._handoff_started,
            "yolo.handoff_completed": self._handoff_completed,
            "yolo.decision_made": self._decision_made,
            "yolo.error_occurred": self._error_occurred,
            "yolo.safety_blocked": self._safety_blocked,
            "yolo.context_updated": self._context_updated,
            "yolo.context_refreshed": self._context_refreshed,
            "yolo.state_saved": self._state_saved,
            "yolo.state_loaded": self._state_loaded,
        }
        self._attached = False

    # -- wiring --------------------------------------------------------------------

    def attach(self) -> None:
        """Start receiving events, and answer :func:`telemetry.propagation.inject`."""
        if not self._attached:
            self._attached = True
            self._aggregator.add_listener(self)
            _ACTIVE.append(self)

    def close(self) -> None:
        """Stop receiving events and end every open span (counted as ``unfinished``)."""
        if self._attached:
            self._attached = False
            self._aggregator.remove_listener(self)
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        with self._lock:
            self._open.end_all("unfinished")

    def __call__(self, signal_name: str, fields: dict[str, Any], timestamp: float) -> None:
        handler = self._handlers.get(signal_name)
        if handler is None:
            return
        fields = self._clean(fields)
        with self._lock:
            self._open.expire_due()
            handler(fields, timestamp)

    def _clean(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The payload with the names spans use made safe like label values.

        Span names and attributes are built from these fields. A lone surrogate (what
        ``os.fsdecode`` makes of undecodable bytes) cannot be encoded and costs the
        whole batch; control characters and long names are no better in a span than
        in a label. Clean names (short, printable ASCII) are kept as they are, so the
        common case costs a few lookups.
        """
        cleaned = None
        for key in _TEXT_FIELDS:
            value = fields.get(key)
            if type(value) is str and not (len(value) <= self._max_text and value.isascii()
                                           and value.isprintable()):
                if cleaned is None:
                    cleaned = dict(fields)
                cleaned[key] = sanitize_label_value(value, self._max_text)
        return fields if cleaned is None else cleaned

    @property
    def open_spans(self) -> int:
        return len(self._open)

    def current_span_context(self, workflow_id: str | None,
                             agent: str | None = None) -> trace.SpanContext | None:
        """The most specific open span of a workflow: its latest open handoff, else the
        agent's (or latest) open agent span, else the workflow span."""
        with self._lock:
            children = list(self._open.children(workflow_id))
            entry = next((c for c in children if c.key[0] == "h"), None)
            if entry is None and agent:
                entry = self._open.get(("a", workflow_id, agent))
            if entry is None and not agent:
                entry = next((c for c in children if c.key[0] == "a"), None)
            if entry is None:
                entry = self._open.get(("w", workflow_id))
            return entry.span.get_span_context() if entry is not None else None

    # -- spans ------------------------------------------------------------------------

    def _open_span(self, key: tuple, name: str, parent: SpanStub | None, attributes: dict,
                   ts: float, workflow_id: str | None, agent: str | None = None) -> OpenSpan:
        return self._open.add(key, self._start(name, parent, attributes, ts), workflow_id,
                              agent, ts)

    def _start(self, name: str, parent: SpanStub | None, attributes: dict,
               ts: float) -> SpanStub:
        if parent is not None and self._inherit and not parent.context.trace_flags.sampled:
            return parent  # unsampled subtree: no new span, no attributes
        return self._tracer.start_span(name, parent, attributes, ns(ts))

    def _leaf(self, name: str, parent: Parent, attributes: dict,
              start_ts: float, end_ts: float) -> None:
        """A span known from its end and duration. It starts no earlier than a local
        parent: a duration longer than the parent has been open means the sender's
        clocks disagree, and a child sticking out of its parent helps no one."""
        span = parent[0]
        if span is not None and self._inherit and not span.context.trace_flags.sampled:
            return
        self._tracer.leaf(name, span, attributes, ns(max(start_ts, parent[1])), ns(end_ts))

    # -- correlation ---------------------------------------------------------------

    def _workflow(self, workflow_id: str | None) -> OpenSpan | None:
        return self._open.get(("w", workflow_id)) if workflow_id is not None else None

    def _agent(self, workflow_id: str | None, agent: str) -> OpenSpan | None:
        entry = self._open.get(("a", workflow_id, agent))
        if entry is None and workflow_id is not None:
            entry = self._open.get(("a", None, agent))
        if entry is None and workflow_id is None:
            entry = self._open.latest_agent(agent)
        return entry

    def _touch(self, entry: OpenSpan | None, ts: float) -> Parent:
        """An open span as a parent: the span and its start (epoch s) for clamping."""
        if entry is None:
            return _NO_PARENT
        entry.touch(ts)
        return entry.span, entry.start_ts

    def _agent_scope(self, f: dict, ts: float) -> Parent:
        """Parent of an agent's own work: traceparent, agent span, workflow span."""
        remote = remote_parent(f) if "traceparent" in f else None
        if remote is not None:
            return remote, 0.0
        wf = f.get("workflow_id")
        entry = self._agent(wf, f["agent"]) or self._workflow(wf)
        return self._touch(entry, ts)

    # -- workflows -----------------------------------------------------------------

    def _workflow_started(self, f: dict, ts: float) -> None:
        wf = f["workflow_id"]
        workflow_type = f.get("workflow_type")
        attributes = {OPERATION: "invoke_workflow", WORKFLOW_ID: wf, CONVERSATION_ID: wf}
        if workflow_type:
            attributes[WORKFLOW_NAME] = workflow_type
        name = f"invoke_workflow {workflow_type}" if workflow_type else "invoke_workflow"
        self._open_span(("w", wf), name, remote_parent(f), attributes, ts, wf)

    def _finish_workflow(self, f: dict, ts: float, error_type: str | None) -> None:
        wf = f["workflow_id"]
        self._open.abandon_children(wf, ts)
        entry = self._open.pop(("w", wf))
        if entry is None:  # the start was not seen: time the span from duration_s
            attributes = {OPERATION: "invoke_workflow", WORKFLOW_ID: wf, CONVERSATION_ID: wf}
            span = self._start("invoke_workflow", remote_parent(f), attributes,
                               ts - f["duration_s"])
            start_ns = ns(ts - f["duration_s"])
        else:
            span, start_ns = entry.span, entry.start_ns
        span.set_attribute(WORKFLOW_OUTCOME, "failed" if error_type else "completed")
        if error_type:
            span.set_attribute(ERROR_TYPE, error_type)
            span.set_error(error_type)
        span.end(max(ns(ts), start_ns))

    def _workflow_completed(self, f: dict, ts: float) -> None:
        self._finish_workflow(f, ts, None)

    def _workflow_failed(self, f: dict, ts: float) -> None:
        self._finish_workflow(f, ts, f["error_type"])

    # -- agents --------------------------------------------------------------------

    def _agent_attributes(self, agent: str, wf: str | None) -> dict:
        attributes = {OPERATION: "invoke_agent", AGENT_NAME: agent}
        if wf is not None:
            attributes[CONVERSATION_ID] = wf
        return attributes

    def _agent_activated(self, f: dict, ts: float) -> None:
        wf, agent = f.get("workflow_id"), f["agent"]
        parent = remote_parent(f) if "traceparent" in f else None
        if parent is None:
            parent = self._touch(self._workflow(wf), ts)[0]
        self._open_span(("a", wf, agent), f"invoke_agent {agent}", parent,
                        self._agent_attributes(agent, wf), ts, wf, agent)

    def _agent_deactivated(self, f: dict, ts: float) -> None:
        entry = self._agent(f.get("workflow_id"), f["agent"])
        if entry is not None:
            self._open.pop(entry.key)
            entry.end(ts)

    def _instant_target(self, f: dict, ts: float) -> tuple[SpanStub, bool]:
        """The span an agent's instant event goes on, and whether it is a zero-length
        span made for it (no agent or workflow span open) that the caller must end."""
        wf, agent = f.get("workflow_id"), f["agent"]
        entry = self._agent(wf, agent) or self._workflow(wf)
        if entry is not None:
            self._touch(entry, ts)
            return entry.span, False
        parent = remote_parent(f) if "traceparent" in f else None
        span = self._start(f"invoke_agent {agent}", parent, self._agent_attributes(agent, wf), ts)
        return span, span is not parent

    def _error_occurred(self, f: dict, ts: float) -> None:
        span, owned = self._instant_target(f, ts)
        if span.is_recording():
            error_type, exception = f["error_type"], f.get("exception")
            attributes = {ERROR_TYPE: error_type, AGENT_NAME: f["agent"]}
            if exception is not None and self._capture:
                attributes = {**exception_attributes(exception), **attributes}
            else:
                attributes["exception.type"] = (exception_type(exception) if exception is not None
                                                else error_type)
            span.add_event("exception", attributes, ns(ts))
            span.set_attribute(ERROR_TYPE, error_type)
            span.set_error(error_type)
        if owned:
            span.end(ns(ts))

    def _safety_blocked(self, f: dict, ts: float) -> None:
        span, owned = self._instant_target(f, ts)
        span.add_event("yolo.safety_blocked", {SAFETY_RULE: f["rule"], AGENT_NAME: f["agent"]},
                       ns(ts))
        if owned:
            span.end(ns(ts))

    def _context_updated(self, f: dict, ts: float) -> None:
        entry = self._agent(f.get("workflow_id"), f["agent"])
        if entry is not None:
            entry.span.set_attribute(CONTEXT_TOKENS, f["tokens"])
            entry.span.set_attribute(CONTEXT_ITEMS, f["items"])

    def _decision_made(self, f: dict, ts: float) -> None:
        attributes = {AGENT_NAME: f["agent"], DECISION_TYPE: f["decision_type"]}
        if f.get("workflow_id") is not None:
            attributes[CONVERSATION_ID] = f["workflow_id"]
        self._leaf(f"decision {f['decision_type']}", self._agent_scope(f, ts), attributes,
                   ts - f["duration_s"], ts)

    def _context_refreshed(self, f: dict, ts: float) -> None:
        attributes = {AGENT_NAME: f["agent"]}
        if f.get("workflow_id") is not None:
            attributes[CONVERSATION_ID] = f["workflow_id"]
        self._leaf(f"context_refresh {f['agent']}", self._agent_scope(f, ts), attributes,
                   ts - f["duration_s"], ts)

    # -- handoffs ------------------------------------------------------------------

    def _handoff_parent(self, f: dict, ts: float) -> Parent:
        remote = remote_parent(f) if "traceparent" in f else None
        if remote is not None:
            return remote, 0.0
        wf = f.get("workflow_id")
        return self._touch(self._workflow(wf) or self._agent(wf, f["from_agent"]), ts)

    def _handoff_attributes(self, f: dict) -> dict:
        attributes = {FROM_AGENT: f["from_agent"], TO_AGENT: f["to_agent"],
                      HANDOFF_SOURCE: f["from_agent"], HANDOFF_TARGET: f["to_agent"]}
        if f.get("workflow_id") is not None:
            attributes[CONVERSATION_ID] = f["workflow_id"]
        return attributes

    def _handoff_started(self, f: dict, ts: float) -> None:
        wf = f.get("workflow_id")
        self._open_span(("h", wf, f["from_agent"], f["to_agent"]),
                        f"handoff {f['from_agent']} -> {f['to_agent']}",
                        self._handoff_parent(f, ts)[0], self._handoff_attributes(f), ts, wf)

    def _handoff_completed(self, f: dict, ts: float) -> None:
        entry = self._open.pop(("h", f.get("workflow_id"), f["from_agent"], f["to_agent"]))
        if entry is not None:
            entry.end(ts)
            return
        self._leaf(f"handoff {f['from_agent']} -> {f['to_agent']}", self._handoff_parent(f, ts),
                   self._handoff_attributes(f), ts - f["duration_s"], ts)

    # -- state ---------------------------------------------------------------------

    def _state(self, name: str, f: dict, ts: float) -> None:
        remote = remote_parent(f) if "traceparent" in f else None
        wf = f.get("workflow_id")
        parent = (remote, 0.0) if remote is not None else self._touch(self._workflow(wf), ts)
        attributes: dict[str, Any] = {STATE_SIZE: f["size_bytes"]}
        if wf is not None:
            attributes[CONVERSATION_ID] = wf
        self._leaf(name, parent, attributes, ts - f["duration_s"], ts)

    def _state_saved(self, f: dict, ts: float) -> None:
        self._state("state_save", f, ts)

    def _state_loaded(self, f: dict, ts: float) -> None:
        self._state("state_load", f, ts)


#: Tracers attached in this process, newest last; :mod:`telemetry.propagation` asks them.
_ACTIVE: list[SignalTracer] = []

if hasattr(os, "register_at_fork"):
    # A forked child's inherited telemetry is inert (it no longer receives signals), and a
    # tracer lock held by another parent thread would stay held: forget those tracers.
    os.register_at_fork(after_in_child=_ACTIVE.clear)


def active_tracer() -> SignalTracer | None:
    """The most recently attached tracer, if tracing is running in this process."""
    return _ACTIVE[-1] if _ACTIVE else None
