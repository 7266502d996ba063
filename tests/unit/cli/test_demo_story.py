"""The demo's story, run on a simulated clock: healthy by default, incidents on request.

Ten simulated minutes take well under a second of real time: the reference
orchestrator, the aggregator and the alert evaluator all read one
:class:`SteppedClock`, which runs an alert evaluation and a real ``GET /health``
every 15 simulated seconds (the default evaluation interval), as a user polling
the demo would see it.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from telemetry import runtime
from telemetry.aggregation.aggregator import Aggregator
from telemetry.alerting.evaluator import AlertEvaluator
from telemetry.cli.incidents import Incident, with_demo_alerts
from telemetry.cli.simulator import ReferenceOrchestrator
from telemetry.config import TelemetryConfig, load
from telemetry.runtime import Telemetry

TICK_S = 15.0
CONFIG = {"server": {"port": 0}, "alerting": {"evaluation_interval_s": TICK_S}}


class SteppedClock:
    """Simulated time that passes at once; every ``tick_s`` of it calls ``on_tick``."""

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        # Event timestamps start at the real time: telemetry accepts them only within
        # limits.timestamp_window_s of its wall clock.
        self.epoch = time.time()
        self.simulated = 0.0
        self.next_tick = tick_s
        self.on_tick: Callable[[float], None] = lambda now: None

    def now(self) -> float:
        return self.simulated

    def wall(self) -> float:
        return self.epoch + self.simulated

    def sleep(self, seconds: float) -> None:
        target = self.simulated + seconds
        while self.next_tick <= target:
            self.simulated = self.next_tick
            self.next_tick += self.tick_s
            self.on_tick(self.simulated)
        self.simulated = target


@dataclass
class Poll:
    at_s: float
    http_status: int
    status: str
    firing: dict[str, str]  # alert name -> severity


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def run_story(monkeypatch: pytest.MonkeyPatch, config: TelemetryConfig, *, seed: int,
              minutes: float, incident: Incident | None = None
              ) -> tuple[list[Poll], tuple[float, float] | None]:
    """Run the demo's orchestrator for ``minutes`` simulated minutes; /health each tick."""
    clock = SteppedClock(TICK_S)
    monkeypatch.setattr(runtime, "Aggregator", functools.partial(
        Aggregator, clock=clock.now, wall_clock=clock.wall))
    monkeypatch.setattr(runtime, "AlertEvaluator", functools.partial(
        AlertEvaluator, clock=clock.now, wall_clock=clock.wall))
    stop = threading.Event()
    polls: list[Poll] = []
    tel = Telemetry(config).start()
    try:
        def tick(now: float) -> None:
            assert tel.alerting is not None
            tel.alerting.evaluate()
            code, document = _get(f"{tel.url}/health")
            firing = {f["alertname"]: f["severity"]
                      for f in document["checks"]["alerts"]["firing"]}
            polls.append(Poll(now, code, document["status"], firing))
            if now >= minutes * 60:
                stop.set()

        clock.on_tick = tick
        orchestrator = ReferenceOrchestrator(seed=seed, stop_event=stop, clock=clock,
                                             incident=incident)
        orchestrator.run()
        # The story did happen (an incident may hold one workflow for minutes).
        assert orchestrator.stats.workflows_started >= minutes / 3
    finally:
        tel.stop()
    return polls, orchestrator.stats.incident_window


@pytest.mark.parametrize("seed", range(1, 11))
def test_ten_minutes_of_the_default_demo_stay_healthy(monkeypatch: pytest.MonkeyPatch,
                                                      seed: int) -> None:
    polls, _ = run_story(monkeypatch, load(CONFIG, environ={}), seed=seed, minutes=10)
    # One poll every 15 s for 10 minutes (an operation in progress may add one more).
    assert [p.at_s for p in polls][:40] == [TICK_S * (i + 1) for i in range(40)]
    assert [p.at_s for p in polls if p.http_status != 200] == []
    assert [(p.at_s, p.firing) for p in polls if "critical" in p.firing.values()] == []
    # Nothing fires at all in the default story: incidents are the exception.
    assert [(p.at_s, p.firing) for p in polls if p.firing] == []


@dataclass(frozen=True)
class Expected:
    alert: str
    severity: str
    http_status_while_firing: int


EXPECTED = {
    "errors": Expected("HighErrorRate", "critical", 503),
    "context": Expected("ContextOverflow", "critical", 503),
    "slow-handoffs": Expected("HandoffLatencyHigh", "warning", 200),
    "stall": Expected("AgentStalled", "warning", 200),
    "loop": Expected("HandoffLoop", "warning", 200),
    "tokens": Expected("TokenBudgetBurn", "warning", 200),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_an_incident_fires_its_alert_and_clears_within_two_minutes(
        monkeypatch: pytest.MonkeyPatch, kind: str, seed: int) -> None:
    expected = EXPECTED[kind]
    incident = Incident(kind, start_s=60.0, duration_s=120.0)
    config = with_demo_alerts(load(CONFIG, environ={}))
    polls, window = run_story(monkeypatch, config, seed=seed, minutes=7, incident=incident)
    assert window is not None
    start, end = window

    for also in incident.alerts[1:]:  # e.g. ToolCallRepeating in a loop
        assert [p for p in polls if also in p.firing and start < p.at_s < end + 120], also
    firing = [p for p in polls if expected.alert in p.firing]
    assert firing, f"{expected.alert} never fired: {polls}"
    fired_at, last_firing_at = firing[0].at_s, firing[-1].at_s
    cleared_at = next(p.at_s for p in polls if p.at_s > last_firing_at)
    print(f"{kind}: incident {start:.0f}-{end:.0f}s; {expected.alert} fired at "
          f"{fired_at:g}s (+{fired_at - start:.0f}s), cleared at {cleared_at:g}s "
          f"(+{cleared_at - end:.0f}s)")
    assert start < fired_at <= start + 120
    assert end <= cleared_at <= end + 120
    assert all(start < p.at_s < end + 120 for p in firing)
    assert {p.firing[expected.alert] for p in firing} == {expected.severity}
    assert {p.http_status for p in firing} == {expected.http_status_while_firing}
    # Healthy before the incident; 200 once it has cleared (side effects, such as
    # WorkflowFailureRatio after the errors incident, may take a little longer).
    before = [p for p in polls if p.at_s <= start]
    assert [(p.at_s, p.http_status, p.firing) for p in before
            if p.http_status != 200 or p.firing] == []
    after = [p for p in polls if p.at_s >= cleared_at]
    assert [(p.at_s, p.http_status) for p in after if p.http_status != 200] == []
    assert polls[-1].firing == {}, "still firing at the end of the run"


def test_a_workflow_lasts_the_sum_of_its_parts() -> None:
    """At any time scale the signals report simulated time throughout: a workflow's
    duration is the sum of the durations reported inside it, and an agent's turn
    (activation to deactivation timestamp) is the sum of the operations in it."""
    import blinker

    from telemetry.signals import CONTRACT

    seen: list[tuple[str, dict[str, Any]]] = []
    receivers = {}
    for spec in CONTRACT:
        def receiver(sender: object, _name: str = spec.name, **fields: Any) -> None:
            seen.append((_name, fields))

        receivers[spec.name] = receiver
        blinker.signal(spec.name).connect(receiver)
    try:
        ReferenceOrchestrator(seed=3, time_scale=0.0002).run(workflows=3)
    finally:
        for name, receiver in receivers.items():
            blinker.signal(name).disconnect(receiver)

    parts: dict[str, float] = {}
    totals: dict[str, float] = {}
    turn_gaps: list[float] = []
    activated = in_turn = 0.0
    for name, fields in seen:
        if name in ("yolo.workflow_completed", "yolo.workflow_failed"):
            totals[fields["workflow_id"]] = fields["duration_s"]
        elif name == "yolo.llm_called":
            continue  # a decision's own call: its time is the decision's
        elif "duration_s" in fields:
            workflow = fields["workflow_id"]
            parts[workflow] = parts.get(workflow, 0.0) + fields["duration_s"]
            if name != "yolo.handoff_completed":  # handoffs come between turns
                in_turn += fields["duration_s"]
        if name == "yolo.agent_activated":
            activated, in_turn = fields["timestamp"], 0.0
        elif name == "yolo.agent_deactivated":
            turn_gaps.append(fields["timestamp"] - activated - in_turn)
    assert len(totals) == 3
    for workflow_id, duration in totals.items():
        # Tens of simulated seconds, waited for at 1/5000 of that in real time.
        assert duration > 10
        assert duration == pytest.approx(parts[workflow_id], abs=1e-6)
    assert len(turn_gaps) >= 9 and all(abs(gap) < 1e-3 for gap in turn_gaps), turn_gaps
