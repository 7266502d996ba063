"""What LLM and tool call signals do to spans, and the loop and repeat span events:
handlers of :class:`telemetry.tracing.tracer.SignalTracer`, next to
:mod:`telemetry.tracing.handlers.events`.

Layout, under the agent span (else the workflow span)::

    chat {model}             llm_called (duration_s)       gen_ai.operation.name = chat
    execute_tool {tool}      tool_completed (duration_s)   gen_ai.operation.name = execute_tool
                             └── event yolo.tool_call.repeated (a repeat run's calls)
    event yolo.handoff.loop  handoff_completed back to an agent the workflow just left

The attributes are the OpenTelemetry GenAI ones (``gen_ai.request.model``,
``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``, ``gen_ai.tool.name``,
``gen_ai.provider.name`` when the signal names the provider, else the OTLP exporter
adds ``tracing.genai_provider``; ``error.type`` and an error status for a failed
call). A ``call_key`` is never an attribute.

Loops and repeats are decided as the aggregator decides them
(:class:`telemetry.aggregation.handlers.operations.HandoffWindows` and
:class:`~telemetry.aggregation.handlers.operations.CallRuns`, with its settings), from the
tracer's own bounded copy, so a trace shows where a loop closed or a run repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from telemetry.tracing.handlers.handoffs import HandoffSignals
from telemetry.tracing.spans.attributes import (
    AGENT_NAME,
    CONVERSATION_ID,
    ERROR_TYPE,
    FROM_AGENT,
    OPERATION,
    TO_AGENT,
    Parent,
)
from telemetry.tracing.spans.table import LATEST_TS, ns
from telemetry.validation import fingerprint

REQUEST_MODEL = "gen_ai.request.model"
PROVIDER_NAME = "gen_ai.provider.name"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
COST = "yolo.llm.cost_usd"
TOOL_NAME = "gen_ai.tool.name"
REPEAT_RUN = "yolo.tool_call.run"
REPEATED = "yolo.tool_call.repeated"
LOOP = "yolo.handoff.loop"


#: Signal name -> the name of its handler here (see TracerState._bound).
CALL_HANDLERS: dict[str, str] = {
    "yolo.llm_called": "_llm_called",
    "yolo.tool_completed": "_tool_completed",
    "yolo.handoff_completed": "_handoff_completed_noting_loops",
}


class CallSignals(HandoffSignals):
    """LLM and tool call handlers, and the loop events of handoffs."""

    def call_handlers(self) -> dict[str, Callable[[dict, float], None]]:
        """Signal name -> handler, for the signals this module handles."""
        return self._bound(CALL_HANDLERS)

    def _text(self, value: str) -> str:
        return self._texts.get(value) or self._learn(value)

    # -- LLM calls -----------------------------------------------------------------

    def _call_parent(self, f: dict, wf: str | None, agent: str, ts: float) -> Parent:
        """:meth:`_agent_scope`, with its common case inline: no traceparent, the
        agent's span open in this workflow."""
        entry = None if "traceparent" in f else self._open.get(("a", wf, agent))
        if entry is None:
            return self._agent_scope(f, wf, agent, ts)
        if ts > entry.last_ts:  # entry.touch(ts), inline
            entry.last_ts = ts
        return entry.span, entry.start_ts

    def _llm_called(self, f: dict, ts: float) -> None:
        texts = self._texts
        agent, wf = f["agent"], f.get("workflow_id")
        agent = texts.get(agent) or self._learn(agent)
        if wf is not None:
            wf = texts.get(wf) or self._learn(wf)
        parent, floor = self._call_parent(f, wf, agent, ts)
        if parent is not None and not parent.sampled and self._inherit:
            return
        model, operation = f["model"], f.get("operation")
        model = texts.get(model) or self._learn(model)
        operation = "chat" if operation is None else texts.get(operation) or self._learn(operation)
        attributes: dict[str, Any] = {
            OPERATION: operation, REQUEST_MODEL: model, AGENT_NAME: agent,
            INPUT_TOKENS: f["input_tokens"], OUTPUT_TOKENS: f["output_tokens"]}
        value = f.get("provider")
        if value is not None:
            attributes[PROVIDER_NAME] = texts.get(value) or self._learn(value)
        error_type = f.get("error_type")
        if error_type is not None:
            error_type = attributes[ERROR_TYPE] = texts.get(error_type) or self._learn(error_type)
        value = f.get("cached_input_tokens")
        if value is not None:
            attributes[CACHED_INPUT_TOKENS] = value
        value = f.get("cost_usd")
        if value is not None:
            attributes[COST] = value
        if wf is not None:
            attributes[CONVERSATION_ID] = wf
        names = self._call_names
        name = names.get((operation, model)) or self._span_name(
            names, (operation, model), f"{operation} {model}")
        start = ts - f["duration_s"]  # start_ns, inline
        if start < floor:
            start = floor
        begin = int(start * 1e9) if 0.0 <= start <= LATEST_TS else ns(start)
        end_ns = int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts)
        if error_type is None:
            self._tracer.leaf(name, parent, attributes, begin, end_ns)
        else:
            self._call_span(name, parent, attributes, begin, end_ns, error_type, None)

    # -- tool calls ----------------------------------------------------------------

    def _tool_completed(self, f: dict, ts: float) -> None:
        texts = self._texts
        agent, tool, wf = f["agent"], f["tool"], f.get("workflow_id")
        agent = texts.get(agent) or self._learn(agent)
        tool = texts.get(tool) or self._learn(tool)
        if wf is not None:
            wf = texts.get(wf) or self._learn(wf)
        call_key = f.get("call_key")
        if call_key is not None:
            call_key = hash(call_key) if type(call_key) is str else fingerprint(f, "call_key")
        run = self._runs.run(agent, tool, call_key)
        parent, floor = self._call_parent(f, wf, agent, ts)
        if parent is not None and not parent.sampled and self._inherit:
            return
        if wf is not None:
            attributes: dict[str, Any] = {OPERATION: "execute_tool", TOOL_NAME: tool,
                                          AGENT_NAME: agent, CONVERSATION_ID: wf}
        else:
            attributes = {OPERATION: "execute_tool", TOOL_NAME: tool, AGENT_NAME: agent}
        error_type = f.get("error_type")
        if error_type is not None:
            error_type = attributes[ERROR_TYPE] = texts.get(error_type) or self._learn(error_type)
        names = self._tool_names
        name = names.get(tool) or self._span_name(names, tool, "execute_tool " + tool)
        start = ts - f["duration_s"]  # start_ns, inline
        if start < floor:
            start = floor
        begin = int(start * 1e9) if 0.0 <= start <= LATEST_TS else ns(start)
        end_ns = int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts)
        if error_type is None and run < self._repeat_threshold:
            self._tracer.leaf(name, parent, attributes, begin, end_ns)
            return
        repeated = None
        if run >= self._repeat_threshold:
            repeated = {TOOL_NAME: tool, AGENT_NAME: agent, REPEAT_RUN: run}
        self._call_span(name, parent, attributes, begin, end_ns, error_type, repeated)

    def _call_span(self, name: str, parent: Any, attributes: dict[str, Any], start: int,
                   end: int, error_type: str | None, repeated: dict[str, Any] | None) -> None:
        """A finished call span: a leaf, unless it carries an error or a repeat event."""
        if error_type is None and repeated is None:
            self._tracer.leaf(name, parent, attributes, start, end)
            return
        span = self._tracer.start_span(name, parent, attributes, start)
        if span.recording:
            if error_type is not None:
                span.set_error(error_type)
            if repeated is not None:
                span.add_event(REPEATED, repeated, end)
        span.end(end)

    # -- loops -----------------------------------------------------------------------

    def _handoff_completed_noting_loops(self, f: dict, ts: float) -> None:
        """The handoff's span, and a loop event on the workflow span (else the agent
        span returned to) when the handoff closes a loop."""
        source, wf = self._names(f, "from_agent")
        target = self._text(f["to_agent"])
        if self._loops.returns_to(wf, source, target):
            entry = self._workflow(wf) or self._agent(wf, target)
            if entry is not None and entry.span.recording:
                entry.span.add_event(LOOP, {AGENT_NAME: target, FROM_AGENT: source,
                                            TO_AGENT: target}, ns(ts))
        self._handoff_completed(f, ts)
