"""The Microsoft Agent Framework adapter's bookkeeping, with no framework import: which
workflow and which agent run the current asyncio task is inside, and which signals the
start and end of each mean.

Agent Framework's middleware contexts do not say which workflow or which outer agent
run they belong to, so two contextvars carry it: the workflow run a ``Workflow.run``
is reporting (set by the workflow observer; the runner's tasks inherit it), and the
stack of agent runs (an agent run started while another is on the stack was started
by that agent's tool: a delegation, reported as a handoff, as Pydantic AI's is).

A workflow run that stops with requests pending (human in the loop) is paused, not
ended: it stays in flight under the same workflow id, and the next run of the same
``Workflow`` object (the one answering the requests) resumes it.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from telemetry.adapters.base import AdapterEmitter, active_trace_fields

#: The name of an agent that has none (its id would be a fresh uuid per agent: unbounded).
UNNAMED_AGENT = "agent"
#: The workflow_type of a workflow that a standalone agent run starts.
AGENT_RUN_TYPE = "agent_framework_agent"
#: The workflow_type of a ``Workflow`` run whose workflow has no name of its own.
WORKFLOW_TYPE = "agent_framework"


@dataclass
class WorkflowRun:
    """One workflow as our signals see it: a ``Workflow`` run, or a standalone agent run."""

    workflow_id: str
    started: float = field(default_factory=time.perf_counter)
    #: target agent -> (source agent, perf_counter at ``handoff_sent``)
    handoffs: dict[str, tuple[str, float]] = field(default_factory=dict)
    paused: bool = False


@dataclass(frozen=True)
class AgentFrame:
    """One agent run on the stack: its agent's name and the workflow it belongs to."""

    agent: str
    run: WorkflowRun
    owns_run: bool = False  # a standalone run: its end is the workflow's end
    parent: str | None = None  # the agent that delegated to it, if any


_workflow: contextvars.ContextVar[WorkflowRun | None] = contextvars.ContextVar(
    "yolo_telemetry_agent_framework_workflow", default=None)
_agents: contextvars.ContextVar[tuple[AgentFrame, ...]] = contextvars.ContextVar(
    "yolo_telemetry_agent_framework_agents", default=())


def current_agent() -> AgentFrame | None:
    """The agent run the caller is inside, if any."""
    stack = _agents.get()
    return stack[-1] if stack else None


def agent_name(agent: Any) -> str:
    name = getattr(agent, "name", None)
    return name if isinstance(name, str) and name.strip() else UNNAMED_AGENT


def error_type(error: BaseException) -> str:
    """The exception's class name: never its message, which may quote the prompt."""
    return type(error).__name__


class RunBook:
    """Opens and closes workflows and agent runs for one emitter; see the module doc."""

    def __init__(self, emitter: AdapterEmitter) -> None:
        self.emitter = emitter

    def send(self, signal_name: str, **fields: Any) -> None:
        self.emitter.send(signal_name, **fields)

    # -- agent runs ------------------------------------------------------------------

    def agent_started(self, agent: str) -> tuple[AgentFrame, contextvars.Token]:
        stack = _agents.get()
        if stack:  # started from a tool of the agent on top: a delegation
            parent = stack[-1]
            frame = AgentFrame(agent, parent.run, parent=parent.agent)
            self.send("yolo.handoff_started", from_agent=parent.agent, to_agent=agent,
                      workflow_id=parent.run.workflow_id)
        elif (run := _workflow.get()) is not None:
            frame = AgentFrame(agent, run)
            self._handoff_arrived(run, agent)
        else:
            run = WorkflowRun(uuid.uuid4().hex)
            frame = AgentFrame(agent, run, owns_run=True)
            self.send("yolo.workflow_started", workflow_id=run.workflow_id,
                      workflow_type=AGENT_RUN_TYPE, **active_trace_fields())
        self.send("yolo.agent_activated", agent=agent, workflow_id=frame.run.workflow_id)
        return frame, _agents.set((*stack, frame))

    def agent_ended(self, frame: AgentFrame, started: float,
                    error: BaseException | None) -> None:
        workflow_id = frame.run.workflow_id
        failure = error_type(error) if error is not None else None
        if failure is not None:
            self.send("yolo.error_occurred", agent=frame.agent, error_type=failure,
                      workflow_id=workflow_id)
        self.send("yolo.agent_deactivated", agent=frame.agent, workflow_id=workflow_id)
        duration = time.perf_counter() - started
        if frame.parent is not None:
            self.send("yolo.handoff_completed", from_agent=frame.parent, to_agent=frame.agent,
                      duration_s=duration, workflow_id=workflow_id)
        elif frame.owns_run:
            self._workflow_ended(frame.run, failure)

    @staticmethod
    def leave(frame: AgentFrame, token: contextvars.Token | None) -> None:
        """Take ``frame`` off the stack of this context."""
        if token is not None:
            try:
                _agents.reset(token)
                return
            except ValueError:  # another context than it was set in
                pass
        stack = _agents.get()
        if stack and stack[-1] is frame:
            _agents.set(stack[:-1])

    @staticmethod
    def enter(frame: AgentFrame) -> contextvars.Token:
        """Put ``frame`` back on top for a stretch of a streamed run (one pull)."""
        return _agents.set((*_agents.get(), frame))

    # -- workflow runs ---------------------------------------------------------------

    def workflow_started(self, workflow: Any, paused: Any,
                         workflow_type: str) -> tuple[WorkflowRun, contextvars.Token, bool]:
        """A ``Workflow`` run began: a new workflow, a paused one resuming, or a workflow
        run inside another (a sub-workflow), which is part of the outer one (and not
        ours to end: the last item is whether it is)."""
        outer = _workflow.get()
        if outer is not None:
            return outer, _workflow.set(outer), False
        run = paused.pop(workflow, None)
        if run is not None:
            run.paused = False
            self.send("yolo.mode_changed", mode="active", workflow_id=run.workflow_id)
        else:
            run = WorkflowRun(uuid.uuid4().hex)
            self.send("yolo.workflow_started", workflow_id=run.workflow_id,
                      workflow_type=workflow_type, **active_trace_fields())
        return run, _workflow.set(run), True

    def handoff_sent(self, run: WorkflowRun, source: str, target: str) -> None:
        self.send("yolo.handoff_started", from_agent=source, to_agent=target,
                  workflow_id=run.workflow_id)
        run.handoffs[target] = (source, time.perf_counter())

    def workflow_stopped(self, run: WorkflowRun, token: contextvars.Token, owned: bool,
                         failure: str | None, paused: Any, workflow: Any) -> None:
        """A ``Workflow`` run ended: completed, failed, or paused on pending requests."""
        with contextlib.suppress(ValueError):  # closed from another context (a dropped
            _workflow.reset(token)              # stream's finalizer): nothing to restore
        if not owned:
            return
        if run.paused and failure is None:
            self._close_handoffs(run)
            paused[workflow] = run
            self.send("yolo.mode_changed", mode="paused", workflow_id=run.workflow_id)
            return
        self._workflow_ended(run, failure)

    def _handoff_arrived(self, run: WorkflowRun, agent: str) -> None:
        sent = run.handoffs.pop(agent, None)
        if sent is not None:
            source, at = sent
            self.send("yolo.handoff_completed", from_agent=source, to_agent=agent,
                      duration_s=time.perf_counter() - at, workflow_id=run.workflow_id)

    def _close_handoffs(self, run: WorkflowRun) -> None:
        """Handoffs whose target never ran are complete when their workflow stops."""
        for target in list(run.handoffs):
            self._handoff_arrived(run, target)

    def _workflow_ended(self, run: WorkflowRun, failure: str | None) -> None:
        self._close_handoffs(run)
        duration = time.perf_counter() - run.started
        if failure is None:
            self.send("yolo.workflow_completed", workflow_id=run.workflow_id,
                      duration_s=duration)
        else:
            self.send("yolo.workflow_failed", workflow_id=run.workflow_id,
                      duration_s=duration, error_type=failure)
