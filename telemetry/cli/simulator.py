"""The reference orchestrator: a simulated YOLO workflow that emits every signal.

It walks the BMAD order (analyst, pm, ux-expert, architect, po, sm, dev, qa),
handing work from agent to agent with randomised decisions (each one LLM call, with
tokens and cost), tool calls, errors, safety blocks, context growth and refreshes,
and state saves (:mod:`telemetry.cli.agent_calls` has the models and tools). The
healthy flow never returns to an agent it left, so it counts no handoff loops (BMAD's
optional return from the architect to the pm would count one per workflow). Like a
real orchestrator it only sends signals, and times each agent's turn with
``telemetry.profiled("agent_turn")`` (a no-op when telemetry is not running).

Time is simulated: every operation has a simulated duration, which is what its
signal reports, and advances the simulated clock by that much; a workflow's
duration is the sum of its parts. ``time_scale`` turns simulated seconds into real
waits: 1 (the demo's default) is real time, so rates per second are what a real
orchestrator of this kind produces and the built-in alerts stay quiet; 0 runs as
fast as possible (the load generator); a fraction compresses time, which
multiplies every rate per real second by ``1 / time_scale``. Tests pass a
``clock`` of their own to run simulated minutes in milliseconds.

The default story is healthy: errors and safety blocks are rare, contexts are
refreshed before they reach the health thresholds. An :class:`~telemetry.cli.
incidents.Incident` makes one thing go wrong for a while (see that module).

``work`` is called once per agent operation (decision, handoff): benchmarks pass a
function that burns CPU to measure overhead on a realistic workload.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from telemetry import signals
from telemetry.cli.agent_calls import AgentCalls
from telemetry.cli.incidents import Incident
from telemetry.cli.story import ScaledClock, SimulationStats
from telemetry.profiling import profiled

BMAD_SEQUENCE = ("analyst", "pm", "ux-expert", "architect", "po", "sm", "dev", "qa")
DECISION_TYPES = {
    "analyst": ("research_scope", "market_fit"),
    "pm": ("prioritise", "scope_cut", "accept_prd"),
    "ux-expert": ("layout", "flow"),
    "architect": ("tech_stack", "component_split", "data_model"),
    "po": ("accept_story", "reorder_backlog"),
    "sm": ("draft_story", "size_story"),
    "dev": ("implement", "refactor", "choose_library"),
    "qa": ("approve", "request_changes"),
}
ERROR_TYPES = ("ToolTimeout", "InvalidOutput", "RateLimited", "ContextOverflow")
SAFETY_RULES = ("no_destructive_shell", "no_secret_in_output", "budget_guard", "scope_guard")


#: An agent's context is refreshed once it holds more than this many tokens, well
#: below the health thresholds (7500 warning, 9000 critical by default).
REFRESH_AT_TOKENS = 6000
#: Attempts at a decision while the provider rate-limits (the ``errors`` incident).
RATE_LIMITED_ATTEMPTS = 4
#: Share of LLM calls the provider turns away once (overloaded) before answering.
LLM_RETRY_PROBABILITY = 0.02


class AgentFailure(RuntimeError):
    """The exception object attached to simulated agent errors."""


class ReferenceOrchestrator:
    """Emits the signals of simulated workflows; deterministic for a given ``seed``."""

    def __init__(
        self,
        seed: int | None = None,
        *,
        time_scale: float = 0.0,
        error_probability: float = 0.03,
        safety_block_probability: float = 0.02,
        workflow_failure_probability: float = 0.04,
        context_tokens_per_step: int = 900,
        events_per_s: float | None = None,
        work: Callable[[], None] | None = None,
        stop_event: threading.Event | None = None,
        clock: ScaledClock | None = None,
        incident: Incident | None = None,
    ) -> None:
        self.random = random.Random(seed)
        self.seed = seed
        self.time_scale = time_scale
        self.incident = incident
        self.error_probability = error_probability
        self.safety_block_probability = safety_block_probability
        self.workflow_failure_probability = workflow_failure_probability
        self.context_tokens_per_step = context_tokens_per_step
        self.events_per_s = events_per_s
        self.work = work
        self.stop_event = stop_event or threading.Event()
        self.clock = clock or ScaledClock(time_scale, self.stop_event)
        self.stats = SimulationStats()
        self._next_due = time.monotonic()
        self._tokens: dict[str, int] = {}
        self._mode = None
        self.calls = AgentCalls(self.random, self.emit, self._spend, self._duration)

    # -- emitting --------------------------------------------------------------

    def emit(self, signal_name: str, **fields: object) -> None:
        self._pace()
        getattr(signals, signal_name).send(self, **fields)
        self.stats.events += 1
        counts = self.stats.counts_by_signal
        counts[signal_name] = counts.get(signal_name, 0) + 1

    def _pace(self) -> None:
        if not self.events_per_s:
            return
        self._next_due += 1.0 / self.events_per_s
        delay = self._next_due - time.monotonic()
        if delay > 0:
            self.stop_event.wait(delay)
        elif delay < -1.0:
            self._next_due = time.monotonic()  # fell behind: do not burst to catch up

    def _spend(self, seconds: float) -> float:
        """An agent operation of ``seconds`` simulated seconds (calls ``work``)."""
        self._pass(seconds)
        if self.work is not None:
            self.work()
        return seconds

    def _pass(self, seconds: float) -> float:
        """Let ``seconds`` of simulated time pass; returns ``seconds``."""
        self.clock.sleep(seconds)
        self.stats.simulated_s = self.clock.now()
        return seconds

    def _incident(self, kind: str) -> bool:
        """Whether the incident ``kind`` is going on now."""
        window = self.stats.incident_window
        return (window is not None and self.incident is not None
                and self.incident.kind == kind and window[0] <= self.clock.now() < window[1])

    def _track_incident(self) -> None:
        """Start and end the incident; note it in the stats; clean up after ``context``.

        It starts ``start_s`` in, but not before a workflow has completed: by then
        every agent and handoff pair has a series, and a rate (Prometheus' or the
        in-process one) only sees what happens to a series after its first sample.
        """
        incident = self.incident
        if incident is None:
            return
        now = self.clock.now()
        if self.stats.incident_window is None:
            if now < incident.start_s or not self.stats.workflows_completed:
                return
            self.stats.incident_window = (now, now + incident.duration_s)
        state = "active" if now < self.stats.incident_window[1] else "over"
        label = f"{incident.kind} ({state})"
        if label == self.stats.incident:
            return
        self.stats.incident = label
        if state == "active" and incident.kind == "errors":
            self._set_mode("degraded")
        if state == "over":
            if incident.kind == "errors":
                self._set_mode("active")
            if incident.kind == "context":  # an operator refreshes every flooded context
                flooded = [agent for agent, tokens in sorted(self._tokens.items())
                           if tokens > REFRESH_AT_TOKENS]
                durations = [self._refresh_context(agent, None, wait=False)
                             for agent in flooded]
                self._pass(max(durations, default=0.0))  # side by side, not one by one

    def _duration(self, median: float, spread: float = 0.6) -> float:
        return round(self.random.lognormvariate(0.0, spread) * median, 6)

    # -- the workflow ----------------------------------------------------------

    def run_workflow(self) -> bool:
        """Run one workflow through the BMAD sequence; True if it completed."""
        stats = self.stats
        number = stats.workflows_started + 1
        workflow_id = f"wf-{self.seed if self.seed is not None else 'x'}-{number}"
        started = self.clock.now()
        if self._mode is None:
            self._set_mode("active")
        if number > 1 and self.random.random() < 0.5:
            self.emit("state_loaded", duration_s=self._pass(self._duration(0.02)),
                      size_bytes=self.random.randint(20_000, 200_000), workflow_id=workflow_id)
        stats.workflows_started += 1
        self.emit("workflow_started", workflow_id=workflow_id, workflow_type="greenfield-fullstack")
        failure = None
        for index, agent in enumerate(BMAD_SEQUENCE):
            if self.stop_event.is_set():
                failure = "Cancelled"
                break
            with profiled("agent_turn"):
                failure = self._run_agent(agent, workflow_id)
            if failure is None and index > 0:
                failure = self._rework(BMAD_SEQUENCE[index - 1], agent, workflow_id)
            if failure is None and index + 1 < len(BMAD_SEQUENCE):
                self._handoff(agent, BMAD_SEQUENCE[index + 1], workflow_id)
            if failure:
                break
        duration = max(self.clock.now() - started, 0.0)
        if failure:
            stats.workflows_failed += 1
            self.emit("workflow_failed", workflow_id=workflow_id, duration_s=duration,
                      error_type=failure)
        else:
            stats.workflows_completed += 1
            self.emit("workflow_completed", workflow_id=workflow_id, duration_s=duration)
        self._maybe_change_mode()
        self._track_incident()
        return failure is None

    def _rework(self, previous: str, agent: str, workflow_id: str) -> str | None:
        """The ``loop`` incident: the agent sends the work back to the one before it,
        and the two pass it to and fro, each redoing the same tool call, for as long
        as the incident lasts."""
        while self._incident("loop") and not self.stop_event.is_set():
            for sender, receiver in ((agent, previous), (previous, agent)):
                self._handoff(sender, receiver, workflow_id)
                with profiled("agent_turn"):
                    failure = self._run_agent(receiver, workflow_id)
                if failure:
                    return failure
        return None

    def _run_agent(self, agent: str, workflow_id: str) -> str | None:
        stats = self.stats
        stats.current_agent = agent
        self._track_incident()
        activated_at, turn_started = self.clock.wall(), self.clock.now()
        self.emit("agent_activated", agent=agent, workflow_id=workflow_id,
                  timestamp=activated_at)
        self._update_context(agent, workflow_id)
        failure = None
        for _ in range(self.random.randint(1, 3)):
            self._stall_or_run_away(agent, workflow_id)
            failure = self._decide(agent, workflow_id)
            if failure:
                break
            self.calls.tool_calls(agent, workflow_id, repeating=self._incident("loop"))
        if self.random.random() < self.safety_block_probability:
            stats.safety_blocks += 1
            self.emit("safety_blocked", agent=agent, rule=self.random.choice(SAFETY_RULES),
                      workflow_id=workflow_id)
        if failure is None and self.random.random() < self.error_probability:
            error_type = self.random.choice(ERROR_TYPES)
            self._error(agent, error_type, workflow_id)
            if self.random.random() < self.workflow_failure_probability * 5:
                failure = error_type
        size = self.random.randint(20_000, 200_000)
        stats.state_saves += 1
        self.emit("state_saved", duration_s=self._pass(self._duration(0.03)), size_bytes=size,
                  workflow_id=workflow_id)
        # The turn's length in simulated time, on the wall clock of its activation.
        self.emit("agent_deactivated", agent=agent, workflow_id=workflow_id,
                  timestamp=activated_at + (self.clock.now() - turn_started))
        return failure

    def _stall_or_run_away(self, agent: str, workflow_id: str) -> None:
        """The ``stall`` incident: the agent waits, silent, on a call that does not
        return until the incident ends. ``tokens``: it keeps re-sending its whole
        history, a prompt of some 150k tokens every few seconds, until it ends."""
        window = self.stats.incident_window
        if self._incident("stall") and window is not None:
            self._pass(window[1] - self.clock.now())
        while self._incident("tokens") and not self.stop_event.is_set():
            duration = self._spend(self._duration(6.0, 0.3))
            self._llm_call(agent, workflow_id, duration, self.random.randint(140_000, 160_000))

    def _llm_call(self, agent: str, workflow_id: str, duration: float, context_tokens: int,
                  error_type: str | None = None) -> None:
        self.calls.llm_call(agent, workflow_id, duration, context_tokens,
                            error_type=error_type)
        self.stats.llm_calls, self.stats.tokens = self.calls.calls, self.calls.tokens

    def _decide(self, agent: str, workflow_id: str) -> str | None:
        """One decision (an LLM call, a few seconds); retried while rate-limited."""
        attempts = RATE_LIMITED_ATTEMPTS if self._incident("errors") else 1
        for _ in range(attempts):
            if self._incident("errors") and self.random.random() < 0.85:
                # The provider answers 429 at once.
                duration = self._spend(self._duration(1.5, 0.3))
                self._llm_call(agent, workflow_id, duration, 0, error_type="RateLimited")
                self._error(agent, "RateLimited", workflow_id)
                continue
            decision_type = self.random.choice(DECISION_TYPES[agent])
            duration = self._spend(self._duration(2.5, 0.5))
            # The decision is the model's answer: the call's time is the decision's,
            # including, now and then, a first attempt the provider turned away.
            answered = duration
            if self.random.random() < LLM_RETRY_PROBABILITY:
                failed = round(duration * self.random.uniform(0.2, 0.5), 6)
                self._llm_call(agent, workflow_id, failed, 0, error_type="Overloaded")
                answered = round(duration - failed, 6)
            self._llm_call(agent, workflow_id, answered, self._tokens.get(agent, 0))
            self.stats.decisions += 1
            self.emit("decision_made", agent=agent, decision_type=decision_type,
                      duration_s=duration, workflow_id=workflow_id)
            return None
        return "RateLimited"

    def _error(self, agent: str, error_type: str, workflow_id: str) -> None:
        self.stats.errors += 1
        self.emit("error_occurred", agent=agent, error_type=error_type,
                  exception=AgentFailure(f"{agent} hit {error_type}"), workflow_id=workflow_id)

    def _update_context(self, agent: str, workflow_id: str) -> None:
        step = self.context_tokens_per_step
        tokens = self._tokens.get(agent, 0) + self.random.randint(step // 2, step * 3 // 2)
        if self._incident("context"):
            tokens += 8 * step  # a tool dumps a large file; refreshes fail meanwhile
        elif tokens > REFRESH_AT_TOKENS:
            self._tokens[agent] = tokens
            self._refresh_context(agent, workflow_id)
            return
        self._tokens[agent] = tokens
        self.emit("context_updated", agent=agent, items=max(tokens // 350, 1), tokens=tokens,
                  workflow_id=workflow_id)

    def _refresh_context(self, agent: str, workflow_id: str | None,
                         wait: bool = True) -> float:
        """Summarise an agent's context to a quarter (at most half the refresh
        threshold), as orchestrators do; returns how long it took. ``wait=False``:
        the caller lets the time pass."""
        ids = {"workflow_id": workflow_id} if workflow_id else {}
        duration = self._duration(1.5)
        if wait:
            self._spend(duration)
        self.emit("context_refreshed", agent=agent, duration_s=duration, **ids)
        tokens = min(self._tokens[agent] // 4, REFRESH_AT_TOKENS // 2)
        self._tokens[agent] = tokens
        self.emit("context_updated", agent=agent, items=max(tokens // 350, 1), tokens=tokens,
                  **ids)
        return duration

    def _handoff(self, from_agent: str, to_agent: str, workflow_id: str) -> None:
        self.emit("handoff_started", from_agent=from_agent, to_agent=to_agent,
                  workflow_id=workflow_id)
        if self._incident("slow-handoffs"):  # the handoff queue is stuck until it ends
            window = self.stats.incident_window or (0.0, 0.0)
            unblocked_in = window[1] - self.clock.now()
            stuck = self.random.uniform(32.0, 40.0)
            duration = self._spend(round(min(stuck, unblocked_in), 6))
        else:
            duration = self._spend(self._duration(0.5))
        self.stats.handoffs += 1
        self.emit("handoff_completed", from_agent=from_agent, to_agent=to_agent,
                  duration_s=duration, workflow_id=workflow_id)

    def _set_mode(self, mode: str) -> None:
        self._mode = mode
        self.emit("mode_changed", mode=mode)

    def _maybe_change_mode(self) -> None:
        """Between workflows: now and then a pause (waiting for work), then active again."""
        if self._incident("errors"):
            return  # degraded until the provider recovers
        if self._mode != "active":
            self._set_mode("active")
        elif self.random.random() < 0.05:
            self._set_mode("paused")
            self._pass(self._duration(20.0, 0.5))

    def run(self, *, workflows: int | None = None, duration_s: float | None = None,
            on_workflow: Callable[[SimulationStats], None] | None = None) -> SimulationStats:
        """Run workflows until ``workflows`` are done, ``duration_s`` passed, or stopped."""
        deadline = time.monotonic() + duration_s if duration_s is not None else None
        done = 0
        while not self.stop_event.is_set():
            if workflows is not None and done >= workflows:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            self.run_workflow()
            done += 1
            if on_workflow is not None:
                on_workflow(self.stats)
        return self.stats

    def stop(self) -> None:
        self.stop_event.set()
