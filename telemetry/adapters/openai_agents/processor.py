"""The OpenAI Agents SDK's traces and spans as our signals: :class:`TelemetryProcessor`.

A trace is a workflow (its id the workflow id); an agent span is an activation, a
function span a tool call, a model span (generation, response) an LLM call, a handoff
span a handoff, a triggered guardrail a safety block, a span's error an error; a
turn's usage is an LLM call when no model span of the turn reported one. What the
span data says (tokens, error types, durations) is read by
:mod:`telemetry.adapters.openai_agents.spans`. The processor remembers at most
``MAX_TRACES`` traces in flight and ``MAX_SPANS_PER_TRACE`` open spans each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agents.tracing import TracingProcessor

from telemetry.adapters.base import AdapterEmitter, active_trace_fields, call_key
from telemetry.adapters.openai_agents.spans import error_type_of, iso_duration, usage_tokens

FRAMEWORK = "openai_agents"

#: Bounds on what the processor remembers: traces in flight, and open spans per trace.
MAX_TRACES = 4096
MAX_SPANS_PER_TRACE = 4096

#: The model name of an LLM call known only from a turn's usage (no model span named it).
UNKNOWN_MODEL = "unknown"

#: Span types whose error is the run's own failure (the run raises it).
RUN_SPANS = frozenset({"agent", "turn", "task"})


class _Open:
    """What the processor keeps for one open span."""

    __slots__ = ("agent", "first_child", "llm_counted", "llm_s", "model", "started", "turn")

    def __init__(self, agent: str | None, turn: str | None, started: float) -> None:
        self.agent = agent
        self.turn = turn            # the id of the turn span it belongs to, if any
        self.started = started      # perf_counter at on_span_start
        self.first_child: float | None = None  # a turn's first tool or handoff start
        self.llm_counted = False    # a turn's LLM call was sent from a model span
        self.model: str | None = None   # a turn's model, named by a span without usage
        self.llm_s: float | None = None  # a turn's model span duration


class _Run:
    """One SDK trace: a workflow."""

    __slots__ = ("announced", "errors", "failure", "last_agent", "spans", "started",
                 "workflow_id")

    def __init__(self, workflow_id: str, announced: bool) -> None:
        self.workflow_id = workflow_id
        self.announced = announced  # workflow_started was sent (the trace start was seen)
        self.started = time.perf_counter()
        self.spans: dict[str, _Open] = {}
        self.last_agent: str | None = None
        self.failure: str | None = None
        self.errors: set[str] = set()


class TelemetryProcessor(TracingProcessor):
    """A ``TracingProcessor`` that sends our signals. Every callback is guarded: an
    exception in it is counted and logged once, never raised into the SDK."""

    def __init__(self, emitter: AdapterEmitter | None = None) -> None:
        self.emitter = emitter or AdapterEmitter(FRAMEWORK)
        self.enabled = True
        self._runs: dict[str, _Run] = {}
        guard = self.emitter.guard
        self._trace_start = guard(self._on_trace_start)
        self._trace_end = guard(self._on_trace_end)
        self._span_start = guard(self._on_span_start)
        self._span_end = guard(self._on_span_end)
        self._enders: dict[str, Callable[[_Run, Any, _Open, float], None]] = {
            "agent": self._agent_ended, "turn": self._turn_ended, "task": self._task_ended,
            "function": self._function_ended, "generation": self._model_ended,
            "response": self._model_ended, "handoff": self._handoff_ended,
            "guardrail": self._guardrail_ended,
        }

    # -- the TracingProcessor interface --------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        if self.enabled:
            self._trace_start(trace)

    def on_trace_end(self, trace: Any) -> None:
        if self.enabled:
            self._trace_end(trace)

    def on_span_start(self, span: Any) -> None:
        if self.enabled:
            self._span_start(span)

    def on_span_end(self, span: Any) -> None:
        if self.enabled:
            self._span_end(span)

    def shutdown(self) -> None:
        self._runs.clear()

    def force_flush(self) -> None:
        """Nothing is buffered: signals are sent as the SDK reports."""

    # -- traces: workflows --------------------------------------------------------------

    def _on_trace_start(self, trace: Any) -> None:
        run = self._remember(trace.trace_id, announced=True)
        fields: dict[str, Any] = active_trace_fields()
        if trace.name:
            fields["workflow_type"] = trace.name
        self.emitter.send("yolo.workflow_started", workflow_id=run.workflow_id, **fields)

    def _on_trace_end(self, trace: Any) -> None:
        run = self._runs.pop(trace.trace_id, None)
        if run is None or not run.announced:
            return
        duration = time.perf_counter() - run.started
        if run.failure is None:
            self.emitter.send("yolo.workflow_completed", workflow_id=run.workflow_id,
                              duration_s=duration)
        else:
            self.emitter.send("yolo.workflow_failed", workflow_id=run.workflow_id,
                              duration_s=duration, error_type=run.failure)

    def _remember(self, trace_id: str, announced: bool) -> _Run:
        runs = self._runs
        if len(runs) >= MAX_TRACES:  # traces that never ended: forget the oldest
            runs.pop(next(iter(runs)), None)
        run = runs[trace_id] = _Run(trace_id, announced)
        return run

    # -- spans --------------------------------------------------------------------------

    def _on_span_start(self, span: Any) -> None:
        run = self._runs.get(span.trace_id) or self._remember(span.trace_id, announced=False)
        data = span.span_data
        kind = data.type
        parent = run.spans.get(span.parent_id) if span.parent_id else None
        now = time.perf_counter()
        if kind == "agent":
            agent = run.last_agent = data.name
            self.emitter.send("yolo.agent_activated", agent=agent, workflow_id=run.workflow_id)
        else:
            agent = parent.agent if parent is not None else run.last_agent
        turn = span.span_id if kind == "turn" else (parent.turn if parent is not None else None)
        if kind in ("function", "handoff") and turn is not None:
            turn_span = run.spans.get(turn)
            if turn_span is not None and turn_span.first_child is None:
                turn_span.first_child = now
        if len(run.spans) < MAX_SPANS_PER_TRACE:
            run.spans[span.span_id] = _Open(agent, turn, now)
        if kind == "function" and agent is not None:
            self.emitter.send("yolo.tool_started", agent=agent, tool=data.name,
                              workflow_id=run.workflow_id)

    def _on_span_end(self, span: Any) -> None:
        run = self._runs.get(span.trace_id)
        if run is None:
            return
        now = time.perf_counter()
        opened = run.spans.pop(span.span_id, None)
        if opened is None:  # started before instrument() or past the bound
            opened = _Open(run.last_agent, None, now - iso_duration(span))
        ender = self._enders.get(span.span_data.type)
        if ender is not None:
            ender(run, span, opened, now)

    def _agent_ended(self, run: _Run, span: Any, opened: _Open, now: float) -> None:
        agent = span.span_data.name
        self._run_error(run, span, agent)
        self.emitter.send("yolo.agent_deactivated", agent=agent, workflow_id=run.workflow_id)

    def _task_ended(self, run: _Run, span: Any, opened: _Open, now: float) -> None:
        self._run_error(run, span, opened.agent)

    def _turn_ended(self, run: _Run, span: Any, opened: _Open, now: float) -> None:
        """The turn's LLM call, from its usage, when no model span reported one."""
        agent = span.span_data.agent_name or opened.agent
        self._run_error(run, span, agent)
        if opened.llm_counted or agent is None:
            return
        tokens = usage_tokens(span.span_data.usage)
        if tokens is None:
            return
        # the model is called first in a turn; its tools and handoffs come after it
        ended = opened.first_child or now
        duration = opened.llm_s if opened.llm_s is not None else ended - opened.started
        self._llm_called(run, agent, opened.model or UNKNOWN_MODEL, duration, tokens, None,
                         timestamp=time.time() - (now - ended))

    def _model_ended(self, run: _Run, span: Any, opened: _Open, now: float) -> None:
        data = span.span_data
        duration = now - opened.started
        response = getattr(data, "response", None)
        model = getattr(data, "model", None) or getattr(response, "model", None)
        usage = getattr(data, "usage", None) or getattr(response, "usage", None)
        tokens = usage_tokens(usage)
        error_type = error_type_of(span.error)
        turn = run.spans.get(opened.turn) if opened.turn is not None else None
        agent = opened.agent
        if error_type is not None and agent is not None:
            self._error(run, agent, error_type)
        if tokens is None and error_type is None and turn is not None:
            turn.model, turn.llm_s = model or turn.model, duration  # the turn counts it
            return
        if turn is not None:
            turn.llm_counted = True
        if agent is not None:
            self._llm_called(run, agent, model or UNKNOWN_MODEL, duration,
                             tokens or (0, 0, 0), error_type,
                             provider="openai" if data.type == "response" else None)

    def _function_ended(self, run: _Run, span: Any, opened: _Open, now: float) -> None:
        agent = opened.agent
        if agent is None:
            return
        data = span.span_data
        fields: dict[str, Any] = {"workflow_id": run.workflow_id}
        if isinstance(data.input, str) and data.input:
            fields["call_key"] = call_key(data.input)
        error_type = error_type_of(span.error)
        if error_type is not None:
            fields["error_type"] = error_type
            self._error(run, agent, error_type)
        self.emitter.send("yolo.tool_completed", agent=agent, tool=data.name,
                          duration_s=now - opened.started, **fields)

    def _handoff_ended(self, run: _Run, span: Any, opened: _Open, now: float) -> None:
        data = span.span_data
        from_agent = data.from_agent or opened.agent
        if from_agent and data.to_agent:
            self.emitter.send("yolo.handoff_completed", from_agent=from_agent,
                              to_agent=data.to_agent, duration_s=now - opened.started,
                              workflow_id=run.workflow_id)
        error_type = error_type_of(span.error)
        if error_type is not None and from_agent:
            self._error(run, from_agent, error_type)

    def _guardrail_ended(self, run: _Run, span: Any, opened: _Open, now: float) -> None:
        data = span.span_data
        agent = opened.agent
        if data.triggered and agent is not None:
            self.emitter.send("yolo.safety_blocked", agent=agent, rule=data.name,
                              workflow_id=run.workflow_id)

    # -- helpers -------------------------------------------------------------------------

    def _llm_called(self, run: _Run, agent: str, model: str, duration: float,
                    tokens: tuple[int, int, int], error_type: str | None,
                    provider: str | None = None, timestamp: float | None = None) -> None:
        fields: dict[str, Any] = {"workflow_id": run.workflow_id}
        if timestamp is not None:
            fields["timestamp"] = timestamp
        if tokens[2]:
            fields["cached_input_tokens"] = tokens[2]
        if error_type is not None:
            fields["error_type"] = error_type
        if provider is not None:
            fields["provider"] = provider
        self.emitter.send("yolo.llm_called", agent=agent, model=model,
                          duration_s=max(duration, 0.0), input_tokens=tokens[0],
                          output_tokens=tokens[1], **fields)

    def _run_error(self, run: _Run, span: Any, agent: str | None) -> None:
        """A run span's error fails the workflow; counted once per type and trace (the
        same error is set on the turn, agent and task spans it passes through)."""
        error_type = error_type_of(span.error)
        if error_type is None:
            return
        if run.failure is None:
            run.failure = error_type
        if agent is None or error_type == "guardrail_tripwire":  # that is a safety block
            return
        if not any(key.startswith(agent + "\0") for key in run.errors):  # not the same again
            self._error(run, agent, error_type)

    def _error(self, run: _Run, agent: str, error_type: str) -> None:
        key = f"{agent}\0{error_type}"
        if key in run.errors:
            return
        if len(run.errors) < MAX_SPANS_PER_TRACE:
            run.errors.add(key)
        self.emitter.send("yolo.error_occurred", agent=agent, error_type=error_type,
                          workflow_id=run.workflow_id)
