"""What each signal does to spans: the handlers of :class:`telemetry.tracing.tracer.SignalTracer`.

Layout (docs/tracing.md lists every name and attribute)::

    invoke_workflow {workflow_type}          workflow_started -> completed/failed
    ├── invoke_agent {agent}                 agent_activated -> agent_deactivated
    │   ├── decision {decision_type}         decision_made (duration_s)
    │   ├── context_refresh {agent}          context_refreshed (duration_s)
    │   ├── chat {model}, execute_tool {tool} llm_called, tool_completed (duration_s)
    │   └── events: exception, yolo.safety_blocked
    ├── handoff {from_agent} -> {to_agent}   handoff_started -> handoff_completed
    └── state_save / state_load              state_saved / state_loaded (duration_s)

Things with a duration are child spans (they take room on the waterfall and can be
searched by name); instants (errors, safety blocks) are events on the agent span,
which costs no span of its own and keeps them next to what the agent was doing.

Handoffs and state saves are in :mod:`telemetry.tracing.handlers.handoffs`, LLM and tool calls
and the loop and repeat events in :mod:`telemetry.tracing.handlers.calls`, what opening and
closing signals do when they are sent in :mod:`telemetry.tracing.handlers.live_signals`, the
attribute names in :mod:`telemetry.tracing.spans.attributes`.

Every handler takes the payload and the event's timestamp (epoch seconds) and runs
under the tracer's lock. Names from the payload are made safe through the tracer's
cache first (``texts.get(name) or learn(name)``): one lookup per name for names seen
before. A span whose parent is not sampled is not made at all with a parent-based
sampler: the handler stops after the bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from telemetry.tracing.handlers.calls import CALL_HANDLERS
from telemetry.tracing.handlers.live_signals import LiveSignals
from telemetry.tracing.live import leaf_span_id
from telemetry.tracing.spans.attributes import (
    AGENT_NAME,
    CONTEXT_ITEMS,
    CONTEXT_TOKENS,
    CONVERSATION_ID,
    DECISION_TYPE,
    ERROR_TYPE,
    OPERATION,
    SAFETY_RULE,
    WORKFLOW_ID,
    WORKFLOW_NAME,
    WORKFLOW_OUTCOME,
    exception_attributes,
    exception_type,
    start_ns,
)
from telemetry.tracing.spans.builder import remote_parent
from telemetry.tracing.spans.table import LATEST_TS, ns

if TYPE_CHECKING:
    from telemetry.tracing.spans.record import SpanStub

#: Signal name -> the name of its handler. The LLM and tool calls and the loop events
#: are in tracing/handlers/calls.py (CALL_HANDLERS), whose handoff_completed handler is this
#: one's and the loop events'.
HANDLERS: dict[str, str] = {
    "yolo.workflow_started": "_workflow_started",
    "yolo.workflow_completed": "_workflow_completed",
    "yolo.workflow_failed": "_workflow_failed",
    "yolo.agent_activated": "_agent_activated",
    "yolo.agent_deactivated": "_agent_deactivated",
    "yolo.handoff_started": "_handoff_started",
    "yolo.handoff_completed": "_handoff_completed",
    "yolo.decision_made": "_decision_made",
    "yolo.error_occurred": "_error_occurred",
    "yolo.safety_blocked": "_safety_blocked",
    "yolo.context_updated": "_context_updated",
    "yolo.context_refreshed": "_context_refreshed",
    "yolo.state_saved": "_state_saved",
    "yolo.state_loaded": "_state_loaded",
}


class SpanSignals(LiveSignals):
    """The signal handlers; :class:`telemetry.tracing.tracer.SignalTracer` provides the
    wiring, :class:`telemetry.tracing.handlers.state.TracerState` the state they work on."""

    def handlers(self) -> dict[str, Callable[[dict, float], None]]:
        """Signal name -> handler, for the signals that make or change spans."""
        return self._bound({**HANDLERS, **CALL_HANDLERS})

    # -- workflows -----------------------------------------------------------------

    def _workflow_started(self, f: dict, ts: float) -> None:
        wf = self._names(f, "workflow_id")[0]
        opened = f.pop(self._opened_key, None)  # made when sent: see live_signals
        if opened is None:
            span, live = self._workflow_span(f, wf, ts, None), None
        else:
            span, live = opened
        self._open.add(("w", wf), span, wf, None, ts).live = live

    def _workflow_span(self, f: dict, wf: str, ts: float,
                       around: Callable[[], SpanStub | None] | None) -> SpanStub:
        """A workflow's span: under its ``traceparent``, else under what ``around``
        finds (an application span current when it is sent), else a root."""
        workflow_type = f.get("workflow_type")
        attributes = {OPERATION: "invoke_workflow", WORKFLOW_ID: wf, CONVERSATION_ID: wf}
        if workflow_type:
            workflow_type = self._texts.get(workflow_type) or self._learn(workflow_type)
            attributes[WORKFLOW_NAME] = workflow_type
        name = f"invoke_workflow {workflow_type}" if workflow_type else "invoke_workflow"
        parent = remote_parent(f)
        if parent is None and around is not None:
            parent = around()
        return self._start(name, parent, attributes, ts)

    def _finish_workflow(self, f: dict, ts: float, error_type: str | None) -> None:
        wf = self._names(f, "workflow_id")[0]
        self._open.abandon_children(wf, ts)
        entry = self._open.pop(("w", wf))
        if entry is None:  # the start was not seen: time the span from duration_s
            attributes = {OPERATION: "invoke_workflow", WORKFLOW_ID: wf, CONVERSATION_ID: wf}
            span = self._start("invoke_workflow", remote_parent(f), attributes,
                               ts - f["duration_s"])
            start_ns = ns(ts - f["duration_s"])
        else:
            span, start_ns = entry.span, entry.start_ns
            if entry.live is not None:  # current nowhere now (put back when sent)
                entry.live.open = False
        if span.recording:
            span.set_attribute(WORKFLOW_OUTCOME, "failed" if error_type else "completed")
            if error_type:
                error_type = self._texts.get(error_type) or self._learn(error_type)
                span.set_attribute(ERROR_TYPE, error_type)
                span.set_error(error_type)
            span.end(max(ns(ts), start_ns))

    def _workflow_completed(self, f: dict, ts: float) -> None:
        self._finish_workflow(f, ts, None)

    def _workflow_failed(self, f: dict, ts: float) -> None:
        self._finish_workflow(f, ts, f["error_type"])

    # -- agents --------------------------------------------------------------------

    @staticmethod
    def _agent_attributes(agent: str, wf: str | None) -> dict:
        if wf is not None:
            return {OPERATION: "invoke_agent", AGENT_NAME: agent, CONVERSATION_ID: wf}
        return {OPERATION: "invoke_agent", AGENT_NAME: agent}

    def _agent_activated(self, f: dict, ts: float) -> None:
        texts = self._texts
        agent, wf = f["agent"], f.get("workflow_id")
        agent = texts.get(agent) or self._learn(agent)
        if wf is not None:
            wf = texts.get(wf) or self._learn(wf)
            entry = self._open.get(("w", wf))
        else:
            entry = None
        opened = f.pop(self._opened_key, None)  # made when sent: see live_signals
        if "traceparent" in f:
            parent = self._scope(f, entry, ts)[0]
        elif entry is not None:  # _scope, inline: the workflow span
            parent = entry.span
            entry.touch(ts)
        else:
            parent = None
        if opened is None:
            span, live = self._agent_span(agent, wf, parent, ts), None
        else:
            span, live = opened
        self._open.add(("a", wf, agent), span, wf, agent, ts).live = live

    def _agent_span(self, agent: str, wf: str | None, parent: SpanStub | None,
                    ts: float) -> SpanStub:
        if parent is not None and not parent.sampled and self._inherit:
            return parent  # unsampled subtree: no new span
        name = self._agent_names.get(agent) or self._span_name(
            self._agent_names, agent, "invoke_agent " + agent)
        return self._tracer.start_span(
            name, parent, self._agent_attributes(agent, wf),
            int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts))

    def _agent_deactivated(self, f: dict, ts: float) -> None:
        texts = self._texts
        agent, wf = f["agent"], f.get("workflow_id")
        agent = texts.get(agent) or self._learn(agent)
        if wf is not None:
            wf = texts.get(wf) or self._learn(wf)
        entry = self._open.pop(("a", wf, agent))
        if entry is None:
            entry = self._agent(wf, agent)
            if entry is None:
                return
            self._open.pop(entry.key)
        if entry.live is not None:  # current nowhere now (put back when sent)
            entry.live.open = False
        end_ns = int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts)
        entry.span.end(end_ns if end_ns > entry.start_ns else entry.start_ns)

    def _context_updated(self, f: dict, ts: float) -> None:
        agent, wf = self._names(f, "agent")
        entry = self._agent(wf, agent)
        if entry is not None and entry.span.recording:
            attributes = entry.span.attributes  # type: ignore[attr-defined]
            attributes[CONTEXT_TOKENS] = f["tokens"]
            attributes[CONTEXT_ITEMS] = f["items"]

    def _decision_made(self, f: dict, ts: float) -> None:
        texts = self._texts
        agent, decision_type, wf = f["agent"], f["decision_type"], f.get("workflow_id")
        agent = texts.get(agent) or self._learn(agent)
        decision_type = texts.get(decision_type) or self._learn(decision_type)
        if wf is not None:
            wf = texts.get(wf) or self._learn(wf)
        # the parent as _agent_scope finds it, inline: this is the most frequent span
        entry = None if "traceparent" in f else self._open.get(("a", wf, agent))
        if entry is not None:
            parent, floor = entry.span, entry.start_ts
            entry.touch(ts)
        else:
            parent, floor = self._agent_scope(f, wf, agent, ts)
        if parent is not None and not parent.sampled and self._inherit:
            return
        if wf is not None:
            attributes = {AGENT_NAME: agent, DECISION_TYPE: decision_type, CONVERSATION_ID: wf}
        else:
            attributes = {AGENT_NAME: agent, DECISION_TYPE: decision_type}
        start = ts - f["duration_s"]  # start_ns, inline
        if start < floor:
            start = floor
        name = self._decision_names.get(decision_type) or self._span_name(
            self._decision_names, decision_type, "decision " + decision_type)
        # the id a TracedOrchestrator.decision block made current (telemetry.tracing.live)
        span_id = (leaf_span_id(f["span_context"], parent.trace_id)
                   if parent is not None and "span_context" in f else 0)
        self._tracer.leaf(name, parent, attributes,
                          int(start * 1e9) if 0.0 <= start <= LATEST_TS else ns(start),
                          int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts), span_id)

    def _context_refreshed(self, f: dict, ts: float) -> None:
        agent, wf = self._names(f, "agent")
        parent, floor = self._agent_scope(f, wf, agent, ts)
        if self._pruned(parent):
            return
        attributes = {AGENT_NAME: agent}
        if wf is not None:
            attributes[CONVERSATION_ID] = wf
        self._tracer.leaf("context_refresh " + agent, parent, attributes,
                          start_ns(ts - f["duration_s"], floor), ns(ts))

    # -- instants --------------------------------------------------------------------

    def _instant_target(self, f: dict, ts: float) -> tuple[SpanStub, bool, str]:
        """The span an agent's instant event goes on, whether it is a zero-length span
        made for it (no agent or workflow span open) that the caller must end, and the
        agent's safe name."""
        agent, wf = self._names(f, "agent")
        entry = self._agent(wf, agent) or self._workflow(wf)
        if entry is not None:
            entry.touch(ts)
            return entry.span, False, agent
        parent = remote_parent(f) if "traceparent" in f else None
        span = self._start("invoke_agent " + agent, parent, self._agent_attributes(agent, wf),
                           ts)
        return span, span is not parent, agent

    def _error_occurred(self, f: dict, ts: float) -> None:
        span, owned, agent = self._instant_target(f, ts)
        if span.recording:
            error_type, exception = f["error_type"], f.get("exception")
            error_type = self._texts.get(error_type) or self._learn(error_type)
            attributes = {ERROR_TYPE: error_type, AGENT_NAME: agent}
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
        span, owned, agent = self._instant_target(f, ts)
        if span.recording:
            rule = f["rule"]
            rule = self._texts.get(rule) or self._learn(rule)
            span.add_event("yolo.safety_blocked", {SAFETY_RULE: rule, AGENT_NAME: agent}, ns(ts))
        if owned:
            span.end(ns(ts))
