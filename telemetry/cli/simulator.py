"""The reference orchestrator: a simulated YOLO workflow that emits every signal.

It walks the BMAD order (analyst, pm, ux-expert, architect, pm, po, sm, dev, qa),
handing work from agent to agent with randomised decisions, errors, safety blocks,
context growth and refreshes, and state saves. Like a real orchestrator it only
sends signals, and times each agent's turn with ``telemetry.profiled("agent_turn")``
(a no-op when telemetry is not running).

``time_scale`` turns simulated durations into real waits (0: as fast as possible,
the load generator; the demo uses a fraction so a workflow takes seconds).
``work`` is called once per agent operation (decision, handoff): benchmarks pass a
function that burns CPU to measure overhead on a realistic workload.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from telemetry import signals
from telemetry.profiling import profiled

BMAD_SEQUENCE = ("analyst", "pm", "ux-expert", "architect", "pm", "po", "sm", "dev", "qa")
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


class AgentFailure(RuntimeError):
    """The exception object attached to simulated agent errors."""


@dataclass
class SimulationStats:
    workflows_started: int = 0
    workflows_completed: int = 0
    workflows_failed: int = 0
    handoffs: int = 0
    decisions: int = 0
    errors: int = 0
    safety_blocks: int = 0
    state_saves: int = 0
    events: int = 0
    current_agent: str | None = None
    counts_by_signal: dict[str, int] = field(default_factory=dict)


class ReferenceOrchestrator:
    """Emits the signals of simulated workflows; deterministic for a given ``seed``."""

    def __init__(
        self,
        seed: int | None = None,
        *,
        time_scale: float = 0.0,
        error_probability: float = 0.04,
        safety_block_probability: float = 0.03,
        workflow_failure_probability: float = 0.08,
        context_tokens_per_step: int = 900,
        events_per_s: float | None = None,
        work: Callable[[], None] | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.random = random.Random(seed)
        self.seed = seed
        self.time_scale = time_scale
        self.error_probability = error_probability
        self.safety_block_probability = safety_block_probability
        self.workflow_failure_probability = workflow_failure_probability
        self.context_tokens_per_step = context_tokens_per_step
        self.events_per_s = events_per_s
        self.work = work
        self.stop_event = stop_event or threading.Event()
        self.stats = SimulationStats()
        self._next_due = time.monotonic()
        self._tokens: dict[str, int] = {}
        self._mode = None

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
        """Simulated time of an operation; waits for real when ``time_scale`` > 0."""
        if self.time_scale:
            self.stop_event.wait(seconds * self.time_scale)
        if self.work is not None:
            self.work()
        return seconds

    def _duration(self, median: float, spread: float = 0.6) -> float:
        return round(self.random.lognormvariate(0.0, spread) * median, 6)

    # -- the workflow ----------------------------------------------------------

    def run_workflow(self) -> bool:
        """Run one workflow through the BMAD sequence; True if it completed."""
        stats = self.stats
        number = stats.workflows_started + 1
        workflow_id = f"wf-{self.seed if self.seed is not None else 'x'}-{number}"
        started = time.monotonic()
        if self._mode is None:
            self._set_mode("active")
        if number > 1 and self.random.random() < 0.5:
            self.emit("state_loaded", duration_s=self._duration(0.02),
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
            if failure is None and index + 1 < len(BMAD_SEQUENCE):
                self._handoff(agent, BMAD_SEQUENCE[index + 1], workflow_id)
            if failure:
                break
        elapsed = max(time.monotonic() - started, 0.0)
        duration = elapsed if self.time_scale else self._duration(240.0, 0.4)
        if failure:
            stats.workflows_failed += 1
            self.emit("workflow_failed", workflow_id=workflow_id, duration_s=duration,
                      error_type=failure)
        else:
            stats.workflows_completed += 1
            self.emit("workflow_completed", workflow_id=workflow_id, duration_s=duration)
        self._maybe_change_mode()
        return failure is None

    def _run_agent(self, agent: str, workflow_id: str) -> str | None:
        stats = self.stats
        stats.current_agent = agent
        self.emit("agent_activated", agent=agent, workflow_id=workflow_id)
        self._update_context(agent, workflow_id)
        for _ in range(self.random.randint(1, 3)):
            decision_type = self.random.choice(DECISION_TYPES[agent])
            duration = self._spend(self._duration(0.8))
            stats.decisions += 1
            self.emit("decision_made", agent=agent, decision_type=decision_type,
                      duration_s=duration, workflow_id=workflow_id)
        if self.random.random() < self.safety_block_probability:
            stats.safety_blocks += 1
            self.emit("safety_blocked", agent=agent, rule=self.random.choice(SAFETY_RULES),
                      workflow_id=workflow_id)
        failure = None
        if self.random.random() < self.error_probability:
            error_type = self.random.choice(ERROR_TYPES)
            stats.errors += 1
            self.emit("error_occurred", agent=agent, error_type=error_type,
                      exception=AgentFailure(f"{agent} hit {error_type}"),
                      workflow_id=workflow_id)
            if self.random.random() < self.workflow_failure_probability * 5:
                failure = error_type
        size = self.random.randint(20_000, 200_000)
        stats.state_saves += 1
        self.emit("state_saved", duration_s=self._duration(0.03), size_bytes=size,
                  workflow_id=workflow_id)
        self.emit("agent_deactivated", agent=agent, workflow_id=workflow_id)
        return failure

    def _update_context(self, agent: str, workflow_id: str) -> None:
        tokens = self._tokens.get(agent, 0) + self.random.randint(
            self.context_tokens_per_step // 2, self.context_tokens_per_step * 3 // 2)
        if tokens > 8000 and self.random.random() < 0.7:
            self.emit("context_refreshed", agent=agent,
                      duration_s=self._spend(self._duration(0.4)), workflow_id=workflow_id)
            tokens //= 4
        self._tokens[agent] = tokens
        self.emit("context_updated", agent=agent, items=max(tokens // 350, 1), tokens=tokens,
                  workflow_id=workflow_id)

    def _handoff(self, from_agent: str, to_agent: str, workflow_id: str) -> None:
        self.emit("handoff_started", from_agent=from_agent, to_agent=to_agent,
                  workflow_id=workflow_id)
        duration = self._spend(self._duration(0.25))
        self.stats.handoffs += 1
        self.emit("handoff_completed", from_agent=from_agent, to_agent=to_agent,
                  duration_s=duration, workflow_id=workflow_id)

    def _set_mode(self, mode: str) -> None:
        self._mode = mode
        self.emit("mode_changed", mode=mode)

    def _maybe_change_mode(self) -> None:
        if self._mode != "active":
            self._set_mode("active")
        elif self.random.random() < 0.05:
            self._set_mode(self.random.choice(("paused", "degraded")))

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
