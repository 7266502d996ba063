"""The bookkeeping of the CrewAI adapter: which event belongs to which crew run and
agent, and which signals each event means. Imports no framework.

The adapter turns each CrewAI event into a plain :class:`Event` (names, counts, ids and
the event's own timestamp; never a prompt, output or tool argument) and hands them to
:class:`CrewTracker` in timestamp order (:mod:`telemetry.adapters.reorder`). CrewAI
stamps every event with the id of the scope it happened in (``parent_event_id``: a
kickoff, task, agent execution, tool or LLM call) and every scope-ending event with the
id of the event that opened it (``started_event_id``), so:

* a **crew run** is a kickoff: a workflow, ``workflow_id`` its kickoff event's id;
  every scope opened inside it belongs to it (an event whose scope the adapter does not
  follow counts for the only open run, if there is one);
* an **agent** is an agent execution (its role), activated for each task it works on;
* a **handoff** is an agent starting a task after another agent finished the previous
  one in the same run (a sequential crew), an agent starting work while another agent's
  delegation tool (``Delegate work to coworker``, ``Ask question to coworker``) is
  running (that agent handed it over; also the manager of a hierarchical crew), or an
  A2A delegation to a remote agent (the remote agent's name from its card);
* durations are differences of CrewAI's own timestamps, so a stream counts the same
  however late it was delivered.

Memory is bounded: open scopes and runs are capped (:data:`MAX_SCOPES`,
:data:`MAX_RUNS`); past a cap a scope is not followed (its events count without a run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_SCOPES = 100_000
MAX_RUNS = 10_000

#: The kinds of :class:`Event` (what the adapter makes of each CrewAI event type).
KICKOFF_STARTED, KICKOFF_COMPLETED, KICKOFF_FAILED = "kickoff", "kickoff_done", "kickoff_failed"
SCOPE_STARTED, SCOPE_ENDED = "scope", "scope_done"  # tasks and other scopes: runs only
AGENT_STARTED, AGENT_COMPLETED, AGENT_FAILED = "agent", "agent_done", "agent_failed"
LLM_STARTED, LLM_COMPLETED, LLM_FAILED = "llm", "llm_done", "llm_failed"
TOOL_STARTED, TOOL_FINISHED, TOOL_FAILED = "tool", "tool_done", "tool_failed"
A2A_STARTED, A2A_COMPLETED = "a2a", "a2a_done"
GUARDRAIL = "guardrail"
STATE_SAVED, STATE_LOADED = "saved", "loaded"
PAUSED, RESUMED = "paused", "resumed"

#: CrewAI's delegation tools: their use hands the work to a coworker agent.
DELEGATION_TOOLS = frozenset({"Delegate work to coworker", "Ask question to coworker"})

#: The agent an LLM call or tool use is counted for when CrewAI names none.
UNKNOWN_AGENT = "unknown"

Send = Callable[..., None]


class Event:
    """What the tracker needs of one CrewAI event; ``data`` holds the kind's fields."""

    __slots__ = ("data", "event_id", "kind", "parent_id", "started_id", "ts")

    def __init__(self, kind: str, ts: float, event_id: str | None = None,
                 parent_id: str | None = None, started_id: str | None = None,
                 **data: Any) -> None:
        self.kind = kind
        self.ts = ts
        self.event_id = event_id
        self.parent_id = parent_id
        self.started_id = started_id
        self.data = data

    def __repr__(self) -> str:
        return f"<Event {self.kind} {self.ts:.6f} {self.data}>"


class Run:
    """One crew kickoff: a workflow, its active agents and the handoff source."""

    __slots__ = ("active", "delegations", "last_done", "scopes", "started", "workflow_id")

    def __init__(self, workflow_id: str, started: float) -> None:
        self.workflow_id = workflow_id
        self.started = started
        self.active: list[str] = []                     # agents working, in start order
        self.last_done: tuple[str, float] | None = None  # last top-level agent to finish
        self.delegations: list[list[Any]] = []           # [from, ts, tool scope, to]
        self.scopes: set[str] = set()


class Scope:
    """An open scope: its run, and what its ending event needs (start, names)."""

    __slots__ = ("agent", "delegated", "extra", "name", "run", "ts")

    def __init__(self, run: Run | None, ts: float, agent: str | None = None,
                 name: str | None = None, extra: Any = None) -> None:
        self.run = run
        self.ts = ts
        self.agent = agent
        self.name = name
        self.extra = extra
        self.delegated = False


class CrewTracker:
    """Turns ordered :class:`Event` objects into signals; see the module doc.

    Not thread-safe on its own: the reorder buffer calls it under its lock.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self.enabled = True
        self.runs: dict[str, Run] = {}
        self.scopes: dict[str, Scope] = {}
        self.paused = False
        self._handlers: dict[str, Callable[[Event], None]] = {
            KICKOFF_STARTED: self._kickoff, KICKOFF_COMPLETED: self._kickoff_end,
            KICKOFF_FAILED: self._kickoff_end, SCOPE_STARTED: self._scope,
            SCOPE_ENDED: self._scope_end, AGENT_STARTED: self._agent,
            AGENT_COMPLETED: self._agent_end, AGENT_FAILED: self._agent_end,
            LLM_STARTED: self._llm, LLM_COMPLETED: self._llm_end, LLM_FAILED: self._llm_end,
            TOOL_STARTED: self._tool, TOOL_FINISHED: self._tool_end,
            TOOL_FAILED: self._tool_end, A2A_STARTED: self._a2a, A2A_COMPLETED: self._a2a_end,
            GUARDRAIL: self._guardrail, STATE_SAVED: self._state, STATE_LOADED: self._state,
            PAUSED: self._mode, RESUMED: self._mode,
        }

    def handle(self, event: Event) -> None:
        if self.enabled:
            self._handlers[event.kind](event)

    # -- runs and scopes ------------------------------------------------------------

    def _run_of(self, event: Event) -> Run | None:
        scope = self.scopes.get(event.parent_id) if event.parent_id else None
        if scope is not None:
            return scope.run
        if len(self.runs) == 1:  # a scope the adapter does not follow: the only run
            return next(iter(self.runs.values()))
        return None

    def _open(self, event: Event, run: Run | None, **info: Any) -> Scope:
        scope = Scope(run, event.ts, **info)
        if event.event_id and len(self.scopes) < MAX_SCOPES:
            self.scopes[event.event_id] = scope
            if run is not None:
                run.scopes.add(event.event_id)
        return scope

    def _close(self, event: Event) -> Scope | None:
        scope = self.scopes.pop(event.started_id, None) if event.started_id else None
        if scope is not None and scope.run is not None:
            scope.run.scopes.discard(event.started_id)  # type: ignore[arg-type]
        return scope

    def _signal(self, name: str, event: Event, run: Run | None, **fields: Any) -> None:
        if run is not None:
            fields["workflow_id"] = run.workflow_id
        self._send(f"yolo.{name}", timestamp=event.ts, **fields)

    def _kickoff(self, event: Event) -> None:
        if self.paused:
            self._set_mode(event, "active")
        if not event.event_id or len(self.runs) >= MAX_RUNS:
            return
        run = Run(event.event_id, event.ts)
        self.runs[event.event_id] = run
        self._open(event, run)
        self._signal("workflow_started", event, run, workflow_type=event.data["name"],
                     **event.data.get("trace", {}))

    def _kickoff_end(self, event: Event) -> None:
        run = self.runs.pop(event.started_id or "", None)
        if run is None:
            return
        for agent in reversed(run.active):  # agents a failure left working
            self._signal("agent_deactivated", event, run, agent=agent)
        for scope_id in run.scopes:
            self.scopes.pop(scope_id, None)
        duration = max(event.ts - run.started, 0.0)
        if event.kind == KICKOFF_COMPLETED:
            self._signal("workflow_completed", event, run, duration_s=duration)
        else:
            self._signal("workflow_failed", event, run, duration_s=duration,
                         error_type=event.data["error_type"])

    def _scope(self, event: Event) -> None:
        self._open(event, self._run_of(event))

    def _scope_end(self, event: Event) -> None:
        self._close(event)

    # -- agents and handoffs --------------------------------------------------------

    def _agent(self, event: Event) -> None:
        run, agent = self._run_of(event), event.data["agent"]
        scope = self._open(event, run, agent=agent)
        if run is not None:
            self._handoff_to(event, run, scope, agent)
            run.active.append(agent)
        self._signal("agent_activated", event, run, agent=agent)

    def _handoff_to(self, event: Event, run: Run, scope: Scope, agent: str) -> None:
        pending = run.delegations[-1] if run.delegations else None
        if pending is not None and pending[3] is None and pending[0] != agent:
            pending[3], scope.delegated = agent, True
            self._handoff(event, run, pending[0], agent, event.ts - pending[1])
        elif pending is None and not run.active and run.last_done is not None:
            source, finished = run.last_done
            if source != agent:
                self._handoff(event, run, source, agent, event.ts - finished)

    def _handoff(self, event: Event, run: Run | None, source: str, target: str,
                 duration: float) -> None:
        self._signal("handoff_started", event, run, from_agent=source, to_agent=target)
        self._signal("handoff_completed", event, run, from_agent=source, to_agent=target,
                     duration_s=max(duration, 0.0))

    def _agent_end(self, event: Event) -> None:
        scope = self._close(event)
        run = scope.run if scope is not None else self._run_of(event)
        agent = scope.agent if scope is not None else event.data["agent"]
        if event.kind == AGENT_FAILED:
            self._signal("error_occurred", event, run, agent=agent,
                         error_type=event.data["error_type"])
        if run is not None and agent in run.active:
            del run.active[len(run.active) - 1 - run.active[::-1].index(agent)]  # its latest
            if scope is not None and not scope.delegated and not run.active:
                run.last_done = (agent, event.ts)
        self._signal("agent_deactivated", event, run, agent=agent)

    def _current_agent(self, event: Event, run: Run | None) -> str:
        agent = event.data.get("agent")
        if agent:
            return agent
        return run.active[-1] if run is not None and run.active else UNKNOWN_AGENT

    # -- LLM and tool calls ---------------------------------------------------------

    def _llm(self, event: Event) -> None:
        run = self._run_of(event)
        self._open(event, run, agent=self._current_agent(event, run), name=event.data["model"])

    def _llm_end(self, event: Event) -> None:
        scope = self._close(event)
        run = scope.run if scope is not None else self._run_of(event)
        data = event.data
        fields: dict[str, Any] = {
            "agent": data.get("agent") or (scope.agent if scope else None)
                     or self._current_agent(event, run),
            "model": data.get("model") or (scope.name if scope else None) or "unknown",
            "duration_s": max(event.ts - scope.ts, 0.0) if scope is not None else 0.0,
            "input_tokens": data.get("input_tokens", 0),
            "output_tokens": data.get("output_tokens", 0),
        }
        if data.get("cached_input_tokens"):
            fields["cached_input_tokens"] = data["cached_input_tokens"]
        if data.get("provider"):
            fields["provider"] = data["provider"]
        if event.kind == LLM_FAILED:
            fields["error_type"] = data["error_type"]
        self._signal("llm_called", event, run, **fields)

    def _tool(self, event: Event) -> None:
        run, tool = self._run_of(event), event.data["tool"]
        agent = self._current_agent(event, run)
        self._open(event, run, agent=agent, name=tool, extra=event.data.get("call_key"))
        if run is not None and tool in DELEGATION_TOOLS and event.event_id:
            run.delegations.append([agent, event.ts, event.event_id, None])
        fields = {"call_key": event.data["call_key"]} if event.data.get("call_key") else {}
        self._signal("tool_started", event, run, agent=agent, tool=tool, **fields)

    def _tool_end(self, event: Event) -> None:
        scope = self._close(event)
        if scope is None:  # its start was not seen (or not followed): no duration
            return
        run = scope.run
        if run is not None:
            run.delegations = [d for d in run.delegations if d[2] != event.started_id]
        duration = event.data.get("duration_s")
        fields: dict[str, Any] = {
            "agent": scope.agent, "tool": scope.name,
            "duration_s": max(event.ts - scope.ts if duration is None else duration, 0.0)}
        if scope.extra:
            fields["call_key"] = scope.extra
        if event.data.get("error_type"):
            fields["error_type"] = event.data["error_type"]
        self._signal("tool_completed", event, run, **fields)

    def _a2a(self, event: Event) -> None:
        run = self._run_of(event)
        agent, remote = self._current_agent(event, run), event.data["remote"]
        self._open(event, run, agent=agent, name=remote)
        self._signal("handoff_started", event, run, from_agent=agent, to_agent=remote)

    def _a2a_end(self, event: Event) -> None:
        scope = self._close(event)
        if scope is None or scope.agent is None or scope.name is None:
            return
        self._signal("handoff_completed", event, scope.run, from_agent=scope.agent,
                     to_agent=scope.name, duration_s=max(event.ts - scope.ts, 0.0))
        if event.data.get("error_type"):
            self._signal("error_occurred", event, scope.run, agent=scope.agent,
                         error_type=event.data["error_type"])

    # -- safety, state, mode --------------------------------------------------------

    def _guardrail(self, event: Event) -> None:
        run = self._run_of(event)
        self._signal("safety_blocked", event, run, agent=self._current_agent(event, run),
                     rule=event.data["rule"])

    def _state(self, event: Event) -> None:
        name = "state_saved" if event.kind == STATE_SAVED else "state_loaded"
        self._signal(name, event, self._run_of(event), duration_s=event.data["duration_s"],
                     size_bytes=0)

    def _mode(self, event: Event) -> None:
        if event.kind == PAUSED:
            self._set_mode(event, "paused")
        elif self.paused:
            self._set_mode(event, "active")

    def _set_mode(self, event: Event, mode: str) -> None:
        self.paused = mode == "paused"
        self._send("yolo.mode_changed", timestamp=event.ts, mode=mode)
