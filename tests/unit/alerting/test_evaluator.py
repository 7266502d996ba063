"""The in-process evaluator: pending -> firing -> resolved, /health, the gauge."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from telemetry import catalogue as cat
from telemetry import load_config
from telemetry.aggregation.aggregator import Aggregator
from telemetry.alerting.definitions import AlertDefinition
from telemetry.alerting.evaluator import AlertEvaluator, AlertInstance
from tests.conftest import FakeClock, send


def alert(**fields: Any) -> AlertDefinition:
    base = {"name": "Errors", "metric": "yolo_errors_total", "kind": "rate", "window": "10s",
            "threshold": 1, "for": "4s", "severity": "warning",
            "summary": "{{ $value | humanize }} errors/s"}
    return AlertDefinition.model_validate({**base, **fields})


def errors(n: int, agent: str = "dev") -> None:
    for _ in range(n):
        send("error_occurred", agent=agent, error_type="ToolTimeout")


class Recorder:
    """A notifier that keeps what the evaluator reports."""

    def __init__(self) -> None:
        self.updates: list[tuple[list[str], list[tuple[str, str]]]] = []
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self, timeout_s: float = 5.0) -> None:
        self.stopped = True

    def update(self, firing: list[AlertInstance], changed: list[AlertInstance],
               now: float) -> None:
        self.updates.append(([i.name for i in firing], [(i.name, i.state) for i in changed]))


def step(evaluator: AlertEvaluator, clock: FakeClock, seconds: float = 1.0) -> list:
    clock.advance(seconds)
    return evaluator.evaluate()


def test_a_rate_alert_goes_pending_then_firing_then_resolves(
        aggregator: Aggregator, clock: FakeClock) -> None:
    recorder = Recorder()
    evaluator = AlertEvaluator([alert()], aggregator, interval_s=1.0, notifier=recorder,
                               clock=clock)
    evaluator.evaluate()
    assert evaluator.health()["status"] == "ok"
    errors(1)
    step(evaluator, clock)
    for _ in range(4):  # 20 errors/s, above 1/s, but not yet for 4s
        errors(20)
        step(evaluator, clock)
        assert [i.state for i in evaluator.instances()] == ["pending"]
        assert aggregator.value(cat.ALERTS_FIRING, ("Errors", "warning")) == 0
    errors(20)
    changed = step(evaluator, clock)
    assert [(i.name, i.state) for i in changed] == [("Errors", "firing")]
    health = evaluator.health()
    assert health["status"] == "degraded"
    assert health["firing"][0]["summary"] == "10.1 errors/s"  # 101 errors, 10s window
    assert health["firing"][0]["labels"] == {"alertname": "Errors", "severity": "warning"}
    assert aggregator.value(cat.ALERTS_FIRING, ("Errors", "warning")) == 1
    # No more errors: the rate over 10s falls under 1/s and the alert resolves.
    resolved_after = None
    for second in range(1, 15):
        if step(evaluator, clock):
            resolved_after = second
            break
    assert resolved_after is not None and 5 <= resolved_after <= 11
    assert evaluator.instances() == []
    assert evaluator.health()["status"] == "ok"
    assert aggregator.value(cat.ALERTS_FIRING, ("Errors", "warning")) == 0
    assert ([], [("Errors", "resolved")]) in recorder.updates


def test_a_critical_value_alert_per_agent_makes_health_unhealthy(
        aggregator: Aggregator, clock: FakeClock) -> None:
    overflow = alert(name="Context", metric="yolo.context.tokens", kind="value", window=None,
                     threshold=9000, severity="critical", by=["agent"], **{"for": 0},
                     summary="{{ $labels.agent }} holds {{ $value }} tokens")
    evaluator = AlertEvaluator([overflow], aggregator, clock=clock)
    send("context_updated", agent="dev", items=3, tokens=9500)
    send("context_updated", agent="qa", items=3, tokens=12000)
    send("context_updated", agent="pm", items=3, tokens=100)
    evaluator.evaluate()
    # A value alert reads the present only: no history of the gauge is kept.
    assert evaluator.ring.points(cat.CONTEXT_TOKENS, 0, clock()) == []
    assert len(evaluator.ring.latest().series[cat.CONTEXT_TOKENS]) == 3
    health = evaluator.health()
    assert health["status"] == "unhealthy"
    assert sorted(f["summary"] for f in health["firing"]) == [
        "dev holds 9500 tokens", "qa holds 12000 tokens"]
    assert aggregator.value(cat.ALERTS_FIRING, ("Context", "critical")) == 2
    send("context_updated", agent="qa", items=3, tokens=10)
    step(evaluator, clock)
    assert [f["labels"]["agent"] for f in evaluator.health()["firing"]] == ["dev"]
    assert aggregator.value(cat.ALERTS_FIRING, ("Context", "critical")) == 1


def test_ratio_and_quantile_alerts_fire_on_what_they_measure(
        aggregator: Aggregator, clock: FakeClock) -> None:
    failing = alert(name="Failing", metric="yolo.workflows", kind="ratio",
                    match={"outcome": "failed"}, threshold=0.2, **{"for": 0},
                    summary="{{ $value | humanizePercentage }} fail")
    slow = alert(name="SlowSaves", metric="yolo.state.save.duration", kind="quantile",
                 quantile=0.95, threshold=1.0, **{"for": 0},
                 summary="p95 {{ $value | humanizeDuration }}")
    evaluator = AlertEvaluator([failing, slow], aggregator, clock=clock)
    evaluator.evaluate()
    for second in range(5):
        send("workflow_completed", workflow_id=f"ok-{second}", duration_s=5.0)
        send("workflow_failed", workflow_id=f"bad-{second}", duration_s=5.0, error_type="X")
        send("state_saved", duration_s=0.01, size_bytes=10)
        step(evaluator, clock)
    assert [f["alertname"] for f in evaluator.health()["firing"]] == ["Failing"]
    assert evaluator.health()["firing"][0]["summary"] == "50% fail"
    for _ in range(10):
        send("state_saved", duration_s=2.0, size_bytes=10)
    step(evaluator, clock)
    assert {f["alertname"] for f in evaluator.health()["firing"]} == {"Failing", "SlowSaves"}


def test_an_alert_that_cannot_be_evaluated_is_reported_and_the_rest_go_on(
        aggregator: Aggregator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    import telemetry.alerting.evaluator as alert_eval

    real = alert_eval.breaching

    def broken(definition, ring, now):
        if definition.name == "Broken":
            raise RuntimeError("boom")
        return real(definition, ring, now)

    monkeypatch.setattr(alert_eval, "breaching", broken)
    fine = alert(name="Fine", metric="yolo.context.tokens", kind="value", window=None,
                 threshold=1, **{"for": 0}, by=["agent"], summary="{{ $labels.agent }}")
    evaluator = AlertEvaluator([alert(name="Broken"), fine], aggregator, clock=clock)
    send("context_updated", agent="dev", items=1, tokens=5)
    evaluator.evaluate()
    evaluator.evaluate()
    health = evaluator.health()
    assert [f["alertname"] for f in health["firing"]] == ["Fine"]
    assert health["evaluation_errors"] == 2
    assert "boom" in health["last_errors"]["Broken"]


def test_the_sample_ring_is_bounded(aggregator: Aggregator, clock: FakeClock) -> None:
    evaluator = AlertEvaluator([alert()], aggregator, interval_s=1.0, max_samples=5,
                               clock=clock)
    for _ in range(20):
        step(evaluator, clock)
    assert len(evaluator.ring) == 5
    roomy = AlertEvaluator([alert()], aggregator, interval_s=1.0, max_samples=1000,
                           clock=clock)
    for _ in range(40):
        step(roomy, clock)
    assert len(roomy.ring) == 13  # the 10s window plus two intervals, both ends included


def test_telemetry_runs_the_evaluator_and_reports_in_health_and_metrics(
        start_telemetry) -> None:
    tel = start_telemetry(
        alerting={"evaluation_interval_s": 0.05},
        alerts=[{"name": "Overflow", "metric": "yolo.context.tokens", "threshold": 100,
                 "by": ["agent"], "severity": "critical", "summary": "{{ $labels.agent }}"}])
    assert tel.alerting is not None
    send("context_updated", agent="dev", items=1, tokens=500)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not tel.alerting.firing():
        time.sleep(0.02)
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(f"{tel.url}/health", timeout=5)
    assert answer.value.code == 503
    document = json.load(answer.value)
    assert document["status"] == "unhealthy"
    assert "alerts is unhealthy" in document["reasons"]
    assert document["checks"]["alerts"]["firing"][0]["labels"]["agent"] == "dev"
    metrics = urllib.request.urlopen(f"{tel.url}/metrics", timeout=5).read().decode()
    assert 'yolo_alerts_firing{alertname="Overflow",severity="critical"} 1.0' in metrics
    thread = tel.alerting._thread
    tel.stop()
    assert thread is not None and not thread.is_alive()


def test_the_evaluator_can_be_turned_off() -> None:
    from telemetry import Telemetry

    tel = Telemetry(load_config({"server": {"enabled": False},
                                 "alerting": {"enabled": False}}, environ={})).start()
    try:
        assert tel.alerting is None
        assert "alerts" not in tel.health()["checks"]
    finally:
        tel.stop()


def test_the_history_cap_is_the_config_key(start_telemetry) -> None:
    tel = start_telemetry(alerting={"evaluation_interval_s": 0.05, "max_history_rows": 100})
    assert tel.alerting is not None and tel.alerting.ring.max_rows == 100
    for index in range(150):  # rows of 150 agents in each sample: past the cap
        errors(1, agent=f"agent-{index}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not tel.alerting.ring.dropped:
        time.sleep(0.02)
    assert tel.alerting.ring.dropped > 0
    assert tel.aggregator.value(cat.DROPPED, ("alerting", "history_full")) > 0
    assert tel.alerting.ring.stats()["rows"] <= 100


def test_the_default_history_cap_is_the_documented_one() -> None:
    assert load_config({}, environ={}).alerting.max_history_rows == 100_000
    assert AlertEvaluator([alert()], Aggregator()).ring.max_rows == 100_000
