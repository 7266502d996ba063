"""CrewAI adapter: crew runs, agents, delegations, LLM and tool calls, guardrails,
checkpoints and human-in-the-loop pauses of CrewAI applications as our signals.

``instrument()`` registers :class:`TelemetryEventListener`, a
``crewai.events.BaseEventListener``, on ``crewai_event_bus``. CrewAI calls its listeners
from a thread pool, so events arrive out of order: each handler only turns its event
into a plain :class:`~telemetry.adapters.crew_runs.Event` (names, counts, ids, CrewAI's
own timestamp) and pushes it into a :class:`~telemetry.adapters.reorder.ReorderBuffer`,
which hands them to the :class:`~telemetry.adapters.crew_runs.CrewTracker` in timestamp
order: at a crew's kickoff completion (CrewAI flushes its bus before it emits that), or
once an event is ``delay_s`` old, or on :meth:`CrewAIInstrumentation.flush`.

Which event means which signal is in :mod:`telemetry.adapters.crew_runs` and in
docs/adapters/crewai.md. No prompt, output, task description or tool argument leaves
the process: a tool call's ``call_key`` is a hash of its arguments, an error is named by
its CrewAI event type (CrewAI reports the message only).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from crewai.events import BaseEventListener, crewai_event_bus
from crewai.events.types import (
    a2a_events,
    agent_events,
    checkpoint_events,
    crew_events,
    flow_events,
    llm_events,
    llm_guardrail_events,
    task_events,
    tool_usage_events,
)
from crewai.types.usage_metrics import UsageMetrics

from telemetry.adapters import crew_runs as cr
from telemetry.adapters.base import AdapterEmitter, Instrumentation, active_trace_fields
from telemetry.adapters.base import call_key as argument_digest
from telemetry.adapters.reorder import ReorderBuffer

__all__ = ["CrewAIInstrumentation", "TelemetryEventListener", "instrument"]

FRAMEWORK = "crewai"

Extract = Callable[[Any], "cr.Event | None"]


def _base(kind: str, event: Any, **data: Any) -> cr.Event:
    return cr.Event(kind, event.timestamp.timestamp(), event.event_id, event.parent_event_id,
                    event.started_event_id, **data)


def _role(agent: Any) -> str:
    return str(getattr(agent, "role", None) or cr.UNKNOWN_AGENT)


def _kickoff(event: Any) -> cr.Event:
    return _base(cr.KICKOFF_STARTED, event, name=event.crew_name or "crew",
                 trace=active_trace_fields())  # the emitter's context: its live span


def _agent(kind: str) -> Extract:
    def extract(event: Any) -> cr.Event:
        return _base(kind, event, agent=_role(event.agent), error_type=event.type)
    return extract


def _lite_agent(kind: str) -> Extract:
    def extract(event: Any) -> cr.Event:
        role = (event.agent_info or {}).get("role") or cr.UNKNOWN_AGENT
        return _base(kind, event, agent=str(role), error_type=event.type)
    return extract


def _llm_done(event: Any) -> cr.Event:
    usage = UsageMetrics.from_provider_dict(event.usage) if event.usage else None
    tokens = {} if usage is None else {
        "input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
        "cached_input_tokens": min(usage.cached_prompt_tokens, usage.prompt_tokens)}
    return _base(cr.LLM_COMPLETED, event, agent=event.agent_role, model=event.model, **tokens)


def _tool_started(event: Any) -> cr.Event:
    return _base(cr.TOOL_STARTED, event, agent=event.agent_role, tool=str(event.tool_name),
                 call_key=argument_digest(event.tool_args))


def _tool_finished(event: Any) -> cr.Event:
    duration = (event.finished_at - event.started_at).total_seconds()
    return _base(cr.TOOL_FINISHED, event, duration_s=duration,
                 error_type="tool_failure" if event.failure is not None else None)


def _guardrail(event: Any) -> cr.Event | None:
    if event.success:
        return None
    # a function guardrail by its function's name; an LLM guardrail's name is its
    # description (the user's prose), so those go by their type
    rule = (event.guardrail_name if event.guardrail_type == "function" else None) \
        or event.guardrail_type or "guardrail"
    return _base(cr.GUARDRAIL, event, agent=event.agent_role, rule=str(rule))


def _a2a_started(event: Any) -> cr.Event:
    return _base(cr.A2A_STARTED, event, agent=event.agent_role,
                 remote=str(event.a2a_agent_name or "a2a_agent"))


def _a2a_done(event: Any) -> cr.Event:
    failed = event.status == "failed"
    return _base(cr.A2A_COMPLETED, event, error_type=event.type + "_failed" if failed else None)


def _state(kind: str) -> Extract:
    def extract(event: Any) -> cr.Event:
        return _base(kind, event, duration_s=max(float(event.duration_ms), 0.0) / 1000)
    return extract


def _plain(kind: str) -> Extract:
    def extract(event: Any) -> cr.Event:
        return _base(kind, event)
    return extract


#: CrewAI event type -> how it becomes a tracker event (None: nothing to send).
EXTRACTORS: dict[type, Extract] = {
    crew_events.CrewKickoffStartedEvent: _kickoff,
    crew_events.CrewKickoffCompletedEvent: _plain(cr.KICKOFF_COMPLETED),
    crew_events.CrewKickoffFailedEvent:
        lambda e: _base(cr.KICKOFF_FAILED, e, error_type=e.type),
    task_events.TaskStartedEvent: _plain(cr.SCOPE_STARTED),
    task_events.TaskCompletedEvent: _plain(cr.SCOPE_ENDED),
    task_events.TaskFailedEvent: _plain(cr.SCOPE_ENDED),
    agent_events.AgentExecutionStartedEvent: _agent(cr.AGENT_STARTED),
    agent_events.AgentExecutionCompletedEvent: _agent(cr.AGENT_COMPLETED),
    agent_events.AgentExecutionErrorEvent: _agent(cr.AGENT_FAILED),
    agent_events.LiteAgentExecutionStartedEvent: _lite_agent(cr.AGENT_STARTED),
    agent_events.LiteAgentExecutionCompletedEvent: _lite_agent(cr.AGENT_COMPLETED),
    agent_events.LiteAgentExecutionErrorEvent: _lite_agent(cr.AGENT_FAILED),
    llm_events.LLMCallStartedEvent:
        lambda e: _base(cr.LLM_STARTED, e, agent=e.agent_role, model=e.model),
    llm_events.LLMCallCompletedEvent: _llm_done,
    llm_events.LLMCallFailedEvent:
        lambda e: _base(cr.LLM_FAILED, e, agent=e.agent_role, model=e.model, error_type=e.type),
    tool_usage_events.ToolUsageStartedEvent: _tool_started,
    tool_usage_events.ToolUsageFinishedEvent: _tool_finished,
    tool_usage_events.ToolUsageErrorEvent:
        lambda e: _base(cr.TOOL_FAILED, e, error_type=e.type),
    llm_guardrail_events.LLMGuardrailCompletedEvent: _guardrail,
    a2a_events.A2ADelegationStartedEvent: _a2a_started,
    a2a_events.A2ADelegationCompletedEvent: _a2a_done,
    checkpoint_events.CheckpointCompletedEvent: _state(cr.STATE_SAVED),
    checkpoint_events.CheckpointRestoreCompletedEvent: _state(cr.STATE_LOADED),
    flow_events.FlowPausedEvent: _plain(cr.PAUSED),
    flow_events.MethodExecutionPausedEvent: _plain(cr.PAUSED),
    flow_events.HumanFeedbackRequestedEvent: _plain(cr.PAUSED),
    flow_events.FlowInputRequestedEvent: _plain(cr.PAUSED),
    flow_events.HumanFeedbackReceivedEvent: _plain(cr.RESUMED),
    flow_events.FlowInputReceivedEvent: _plain(cr.RESUMED),
    flow_events.FlowStartedEvent: _plain(cr.RESUMED),
}


class TelemetryEventListener(BaseEventListener):
    """Registers one handler per event type of :data:`EXTRACTORS` on the bus; each
    turns its event into a tracker event and pushes it into the reorder buffer."""

    def __init__(self, buffer: ReorderBuffer, emitter: AdapterEmitter) -> None:
        self.buffer = buffer
        self.emitter = emitter
        self.handlers: list[tuple[type, Callable[[Any, Any], None]]] = []
        super().__init__()  # calls setup_listeners(crewai_event_bus)

    def setup_listeners(self, crewai_event_bus: Any) -> None:
        for event_type, extract in EXTRACTORS.items():
            handler = self._handler(extract, event_type is crew_events.CrewKickoffCompletedEvent)
            crewai_event_bus.on(event_type)(handler)
            self.handlers.append((event_type, handler))

    def _handler(self, extract: Extract, release: bool) -> Callable[[Any, Any], None]:
        buffer = self.buffer

        @self.emitter.guard
        def on_event(source: Any, event: Any) -> None:
            record = extract(event)
            if record is not None:
                buffer.push(record.ts, record, event.emission_sequence or 0)
            if release:  # CrewAI flushed its bus before a kickoff completed: all is here
                buffer.release_all()

        on_event.__name__ = on_event.__qualname__ = f"yolo_telemetry_{extract.__name__}"
        return on_event

    def remove(self) -> None:
        for event_type, handler in self.handlers:
            crewai_event_bus.off(event_type, handler)
        self.handlers.clear()


_lock = threading.Lock()
_active: CrewAIInstrumentation | None = None


class CrewAIInstrumentation(Instrumentation):
    """The handle of :func:`instrument`; :meth:`flush` hands on what the reorder buffer
    holds (read metrics right after a kickoff with it)."""

    def __init__(self, listener: TelemetryEventListener, tracker: cr.CrewTracker) -> None:
        super().__init__(FRAMEWORK, self._undo_all)
        self.listener = listener
        self.tracker = tracker
        self.buffer = listener.buffer
        self.emitter = listener.emitter

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait (up to ``timeout_s``) for CrewAI's pending handlers, then send every
        held event's signals."""
        self.emitter.guard(crewai_event_bus.flush)(timeout=timeout_s)
        self.buffer.release_all()

    def _undo_all(self) -> None:
        global _active
        with _lock:
            if _active is self:
                _active = None
        self.listener.remove()
        self.buffer.close()
        self.tracker.enabled = False


def instrument(*, delay_s: float = 1.0, capacity: int = 10_000) -> CrewAIInstrumentation:
    """Report every CrewAI crew run in this process as our signals.

    ``delay_s``: how long an event waits for earlier-stamped ones before its signals are
    sent (CrewAI delivers events out of order); a completed kickoff sends at once.
    ``capacity``: the most events held for reordering (past it the oldest go early).

    Idempotent: while instrumented, a second call returns the same handle (uninstrument
    first to change the options).
    """
    global _active
    with _lock:
        if _active is None:
            emitter = AdapterEmitter(FRAMEWORK)
            tracker = cr.CrewTracker(emitter.send)
            buffer = ReorderBuffer(emitter.guard(tracker.handle), delay_s=delay_s,
                                   capacity=capacity)
            _active = CrewAIInstrumentation(TelemetryEventListener(buffer, emitter), tracker)
        return _active
