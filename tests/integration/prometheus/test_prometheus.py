"""A real Prometheus scrapes the demo; PromQL agrees with the aggregator."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from telemetry import Telemetry
from telemetry.cli.simulator import ReferenceOrchestrator
from tests.support.backends import prometheus_server, promtool_check_metrics

pytestmark = pytest.mark.backend


def _run_demo(start_telemetry: Callable[..., Telemetry], workflows: int = 6) -> Telemetry:
    tel = start_telemetry()
    ReferenceOrchestrator(seed=11, error_probability=0.2).run(workflows=workflows)
    return tel


def test_promql_equals_the_aggregator(start_telemetry: Callable[..., Telemetry],
                                      tmp_path: Path) -> None:
    tel = _run_demo(start_telemetry)
    agent, system = tel.snapshot()
    assert agent.handoffs_total > 0 and agent.errors_total > 0

    with prometheus_server(tmp_path, [f"127.0.0.1:{tel.server.port}"]) as prometheus:
        prometheus.wait_for_targets_up(1)
        prometheus.wait_for(f"sum(yolo_handoffs_total) == {agent.handoffs_total}")

        def value(promql: str) -> float | None:
            return prometheus.query_value(promql)

        assert value("sum(yolo_decisions_total)") == agent.decisions_made
        assert value("sum(yolo_errors_total)") == agent.errors_total
        assert value("sum(yolo_safety_blocks_total)") == agent.safety_blocks
        assert value("sum(yolo_handoff_duration_seconds_count)") == agent.handoff_duration.count
        assert value("sum(yolo_handoff_duration_seconds_sum)") == pytest.approx(
            agent.handoff_duration.sum)
        assert value('yolo_workflows_total{outcome="completed"}') == system.workflows_completed
        assert (value('yolo_workflows_total{outcome="failed"}') or 0) == system.workflows_failed
        assert value("yolo_state_saves_total") == system.state_saves_total
        assert value(f'yolo_mode{{mode="{system.mode}"}}') == 1
        assert value("sum(yolo_mode)") == 1
        for name, tokens in agent.context_tokens_by_agent.items():
            assert value(f'yolo_context_tokens{{agent="{name}"}}') == tokens
        for (source, target), count in agent.handoffs_by_pair.items():
            promql = f'yolo_handoffs_total{{from_agent="{source}",to_agent="{target}"}}'
            assert value(promql) == count
        # p95 from Prometheus equals the aggregator's estimate from the same buckets.
        p95 = value("histogram_quantile(0.95, sum by (le) (yolo_handoff_duration_seconds_bucket))")
        assert p95 == pytest.approx(agent.handoff_duration.p95)
        assert value("yolo_process_memory_resident_bytes") > 0
        assert value("sum(yolo_telemetry_events_total)") == system.events_total


def test_promtool_accepts_a_scrape_of_the_demo(start_telemetry: Callable[..., Telemetry]) -> None:
    tel = _run_demo(start_telemetry, workflows=3)
    for accept in ("text/plain", "application/openmetrics-text; version=1.0.0"):
        request = urllib.request.Request(f"{tel.url}/metrics", headers={"Accept": accept})
        text = urllib.request.urlopen(request, timeout=10).read().decode()
        ok, output = promtool_check_metrics(text)
        assert ok, output
