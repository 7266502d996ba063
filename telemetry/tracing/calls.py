"""What LLM and tool call signals do to spans, and the loop and repeat span events:
handlers of :class:`telemetry.tracing.tracer.SignalTracer`, next to
:mod:`telemetry.tracing.events`.

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
(:class:`telemetry.aggregation.operations.HandoffWindows` and
:class:`~telemetry.aggregation.operations.CallRuns`, with its settings), from the
tracer's own bounded copy, so a trace shows where a loop closed or a run repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telemetry.aggregation.operations import CallRuns, HandoffWindows
from telemetry.tracing.attributes import (
    AGENT_NAME,
    CONVERSATION_ID,
    ERROR_TYPE,
    FROM_AGENT,
    OPERATION,
    TO_AGENT,
    Parent,
    start_ns,
)
from telemetry.tracing.table import OpenSpan, ns
from telemetry.validation import fingerprint

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.tracing.builder import SpanBuilder

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


class CallSignals:
    """LLM and tool call handlers, and the loop events of handoffs;
    :class:`telemetry.tracing.events.SpanSignals` provides the correlation they use."""

    _tracer: SpanBuilder
    _texts: dict[str, str]
    _learn: Callable[[Any], Any]
    _aggregator: Aggregator
    _names: Callable[[dict, str], tuple[str, str | None]]
    _agent: Callable[[str | None, str], OpenSpan | None]
    _workflow: Callable[[str | None], OpenSpan | None]
    _agent_scope: Callable[[dict, str | None, str, float], Parent]
    _pruned: Callable[[Any], bool]
    _handoff_completed: Callable[[dict, float], None]
    _call_state: tuple[HandoffWindows, CallRuns] | None = None

    def call_handlers(self) -> dict[str, Callable[[dict, float], None]]:
        """Signal name -> handler, for the signals this module handles."""
        return {
            "yolo.llm_called": self._llm_called,
            "yolo.tool_completed": self._tool_completed,
            "yolo.handoff_completed": self._handoff_completed_noting_loops,
        }

    def _detectors(self) -> tuple[HandoffWindows, CallRuns]:
        """The tracer's loop windows and repeat runs, with the aggregator's settings."""
        if self._call_state is None:
            ops = self._aggregator.state.ops
            self._call_state = (
                HandoffWindows(ops.loop_window, ops.max_workflows, ops.max_label_length),
                CallRuns(ops.max_agents, ops.max_label_length))
        return self._call_state

    def _text(self, value: str) -> str:
        return self._texts.get(value) or self._learn(value)

    # -- LLM calls -----------------------------------------------------------------

    def _llm_called(self, f: dict, ts: float) -> None:
        agent, wf = self._names(f, "agent")
        parent, floor = self._agent_scope(f, wf, agent, ts)
        if self._pruned(parent):
            return
        model, operation = self._text(f["model"]), f.get("operation")
        operation = "chat" if operation is None else self._text(operation)
        attributes: dict[str, Any] = {
            OPERATION: operation, REQUEST_MODEL: model, AGENT_NAME: agent,
            INPUT_TOKENS: f["input_tokens"], OUTPUT_TOKENS: f["output_tokens"]}
        for key, attribute in (("provider", PROVIDER_NAME), ("error_type", ERROR_TYPE)):
            value = f.get(key)
            if value is not None:
                attributes[attribute] = self._text(value)
        for key, attribute in (("cached_input_tokens", CACHED_INPUT_TOKENS), ("cost_usd", COST)):
            value = f.get(key)
            if value is not None:
                attributes[attribute] = value
        if wf is not None:
            attributes[CONVERSATION_ID] = wf
        self._call_span(f"{operation} {model}", parent, attributes,
                        start_ns(ts - f["duration_s"], floor), ns(ts),
                        attributes.get(ERROR_TYPE), None)

    # -- tool calls ----------------------------------------------------------------

    def _tool_completed(self, f: dict, ts: float) -> None:
        agent, wf = self._names(f, "agent")
        tool = self._text(f["tool"])
        call_key = None if f.get("call_key") is None else fingerprint(f, "call_key")
        runs = self._detectors()[1]
        run = runs.run(agent, tool, call_key)
        parent, floor = self._agent_scope(f, wf, agent, ts)
        if self._pruned(parent):
            return
        attributes: dict[str, Any] = {OPERATION: "execute_tool", TOOL_NAME: tool,
                                      AGENT_NAME: agent}
        error_type = f.get("error_type")
        if error_type is not None:
            error_type = attributes[ERROR_TYPE] = self._text(error_type)
        if wf is not None:
            attributes[CONVERSATION_ID] = wf
        repeated = None
        if run >= self._aggregator.state.ops.repeat_threshold:
            repeated = {TOOL_NAME: tool, AGENT_NAME: agent, REPEAT_RUN: run}
        self._call_span(f"execute_tool {tool}", parent, attributes,
                        start_ns(ts - f["duration_s"], floor), ns(ts), error_type, repeated)

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
        if self._detectors()[0].returns_to(wf, source, target):
            entry = self._workflow(wf) or self._agent(wf, target)
            if entry is not None and entry.span.recording:
                entry.span.add_event(LOOP, {AGENT_NAME: target, FROM_AGENT: source,
                                            TO_AGENT: target}, ns(ts))
        self._handoff_completed(f, ts)
