"""The reference orchestrator's simulated time, and what a run of it counts.

Every operation of the simulation has a simulated duration; :class:`ScaledClock`
advances simulated time by it and waits ``time_scale`` times as long in real time
(1: real time, 0: not at all), so the signals always report simulated time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


class ScaledClock:
    """Simulated time, advanced by each operation and waited for ``time_scale`` x real.

    ``now`` is the simulated seconds since the start; ``wall`` the epoch time event
    timestamps are based on.
    """

    def __init__(self, time_scale: float, stop_event: threading.Event) -> None:
        self.time_scale = time_scale
        self.stop_event = stop_event
        self.simulated = 0.0

    def now(self) -> float:
        return self.simulated

    def sleep(self, seconds: float) -> None:
        if self.time_scale:
            self.stop_event.wait(seconds * self.time_scale)
        self.simulated += seconds

    def wall(self) -> float:
        return time.time()


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
    llm_calls: int = 0
    tokens: int = 0
    events: int = 0
    current_agent: str | None = None
    #: Simulated seconds since the start.
    simulated_s: float = 0.0
    #: "errors (active)", "errors (over)"... once a staged incident has started.
    incident: str | None = None
    #: Simulated start and end of the staged incident, once it has started.
    incident_window: tuple[float, float] | None = None
    counts_by_signal: dict[str, int] = field(default_factory=dict)
