"""The scripted story (a handoff, a tool call, tokens, a tripped guardrail) as our
metrics at a real scrape of /metrics, spans at the real rotel receiver, and /health."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.openai_agents import scenario
from tests.adapters.support import run_story, sample

pytestmark = pytest.mark.backend


def test_the_story_shows_in_metrics_spans_and_health(tmp_path: Path, start_telemetry,
                                                      instrumented) -> None:
    run = run_story(tmp_path, start_telemetry, scenario.story, workflows=2,
                    tool_observers=scenario.tool_observers)
    metrics, health, spans, during = run.metrics, run.health, run.spans, run.during
    assert run.result == scenario.ANSWER

    # metrics
    assert sample(metrics, "yolo_handoffs_total", from_agent="triage", to_agent="weather") == 1
    assert sample(metrics, "yolo_tool_calls_total", agent="weather", tool="get_weather") == 1
    assert sample(metrics, "yolo_tool_errors_total", agent="weather", tool="get_weather",
                  error_type="tool_error") == 0
    assert sample(metrics, "yolo_llm_calls_total", agent="triage", model="unknown") == 1
    assert sample(metrics, "yolo_llm_calls_total", agent="weather", model="unknown") == 2
    weather_in = sum(i for i, _ in scenario.WEATHER_TOKENS)
    weather_out = sum(o for _, o in scenario.WEATHER_TOKENS)
    assert sample(metrics, "yolo_llm_token_usage_sum", agent="weather", model="unknown",
                  token_type="input") == weather_in
    assert sample(metrics, "yolo_llm_token_usage_sum", agent="weather", model="unknown",
                  token_type="output") == weather_out
    assert sample(metrics, "yolo_llm_token_usage_sum", agent="triage", model="unknown",
                  token_type="input") == scenario.TRIAGE_TOKENS[0]
    assert sample(metrics, "yolo_safety_blocks_total", agent="guarded", rule="no_secrets") == 1
    assert sample(metrics, "yolo_workflows_total", outcome="completed") == 1
    assert sample(metrics, "yolo_workflows_total", outcome="failed") == 1
    assert sample(metrics, "yolo_agents_active") == 0  # every activation was closed
    assert sample(metrics, "yolo_telemetry_invalid_events_total") == 0
    assert "adapter_openai_agents" not in metrics  # no adapter failure

    # /health: inside the tool, the agent handed off to is the one at work
    assert [(h["current_agent"], h["agents_active"]) for h in during] == [("weather", 1)]
    assert run.status == 200 and health["status"] == "healthy"
    assert health["agents_active"] == 0
    assert health["invalid_events_total"] == 0
    # run 1: workflow 2, agents 4, handoff, 3 LLM calls, tool 2; run 2: workflow 2,
    # agent 2, safety block
    assert health["events_total"] == 17
    assert health["errors_last_hour"] == 0  # the tripwire is a safety block, not an error

    # spans: one trace per run; the handoff, the tool and the LLM calls inside it
    by_name = {s["name"]: s for s in spans}
    workflow = next(s for s in spans if s["name"].startswith("invoke_workflow")
                    and s["attributes"].get("yolo.workflow.outcome") == "completed")
    trace_id = workflow["trace_id"]
    for name in ("invoke_agent triage", "invoke_agent weather", "execute_tool get_weather",
                 "chat unknown"):
        assert name in by_name, f"no span {name!r} in {sorted(by_name)}"
    tool = by_name["execute_tool get_weather"]
    assert tool["trace_id"] == trace_id
    assert tool["parent_span_id"] == by_name["invoke_agent weather"]["span_id"]
    handoffs = [s for s in spans if s["name"].startswith("handoff")]
    assert [s["trace_id"] for s in handoffs] == [trace_id]
    chats = [s for s in spans if s["name"] == "chat unknown"]
    assert sorted(s["attributes"]["gen_ai.usage.input_tokens"] for s in chats) == [30, 50, 70]
    guarded = by_name["invoke_agent guarded"]
    assert guarded["trace_id"] != trace_id
    assert [e["name"] for e in guarded["events"]] == ["yolo.safety_blocked"]

    # no prompt, answer or tool output anywhere
    run.assert_no_secrets(scenario.PROMPT, scenario.ANSWER, scenario.TOOL_OUTPUT, "Paris")
