"""The handoff story (triage -> billing -> refunds, a tool call, tokens) as our metrics
at a real scrape of /metrics, spans at the real rotel receiver, and /health."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.agent_framework import scenario
from tests.adapters.support import run_story, sample

pytestmark = pytest.mark.backend

MODELS = {"triage": "triage-model", "billing": "billing-model", "refunds": "refunds-model"}
TOKENS = {"triage": scenario.TRIAGE_TOKENS, "billing": scenario.BILLING_TOKENS,
          "refunds": scenario.REFUNDS_TOKENS}


def test_the_handoff_story_shows_in_metrics_spans_and_health(tmp_path: Path, start_telemetry,
                                                              instrumented) -> None:
    run = run_story(tmp_path, start_telemetry, scenario.story,
                    tool_observers=scenario.tool_observers)
    metrics, health, spans, during = run.metrics, run.health, run.spans, run.during
    assert run.result == scenario.ANSWER

    # two handoffs, each counted and timed; one workflow
    for source, target in (("triage", "billing"), ("billing", "refunds")):
        assert sample(metrics, "yolo_handoffs_total", from_agent=source, to_agent=target) == 1
        assert sample(metrics, "yolo_handoff_duration_seconds_count", from_agent=source,
                      to_agent=target) == 1
    assert sample(metrics, "yolo_handoff_loops_total", agent="triage") == 0
    assert sample(metrics, "yolo_workflows_total", outcome="completed") == 1
    assert sample(metrics, "yolo_agents_active") == 0
    # the tool, and not the orchestration's handoff tools
    assert sample(metrics, "yolo_tool_calls_total", agent="billing", tool="lookup_invoice") == 1
    assert "handoff_to_" not in metrics
    # LLM calls and tokens per agent and model
    for name, calls in TOKENS.items():
        model = MODELS[name]
        assert sample(metrics, "yolo_llm_calls_total", agent=name, model=model) == len(calls)
        for kind, index in (("input", 0), ("output", 1)):
            assert sample(metrics, "yolo_llm_token_usage_sum", agent=name, model=model,
                          token_type=kind) == sum(c[index] for c in calls)
    assert sample(metrics, "yolo_telemetry_invalid_events_total") == 0
    assert "adapter_agent_framework" not in metrics  # no adapter failure

    # /health: inside the tool, billing is the agent at work
    assert [(h["current_agent"], h["agents_active"]) for h in during] == [("billing", 1)]
    assert run.status == 200 and health["status"] == "healthy"
    assert health["agents_active"] == 0
    # workflow 2, agents 6, handoffs 4, LLM calls 4, tool 2
    assert health["events_total"] == 18

    # spans: one trace; agents under the workflow, tools and chats under their agent
    by_name = {s["name"]: s for s in spans}
    workflow = next(s for s in spans if s["name"].startswith("invoke_workflow"))
    assert len({s["trace_id"] for s in spans}) == 1
    for name in MODELS:
        agent_span = by_name[f"invoke_agent {name}"]
        assert agent_span["parent_span_id"] == workflow["span_id"], name
        chats = [s for s in spans if s["name"] == f"chat {MODELS[name]}"]
        assert {c["parent_span_id"] for c in chats} == {agent_span["span_id"]}, name
        assert sorted(c["attributes"]["gen_ai.usage.input_tokens"] for c in chats) == \
            sorted(i for i, _ in TOKENS[name])
    assert by_name["execute_tool lookup_invoice"]["parent_span_id"] == \
        by_name["invoke_agent billing"]["span_id"]
    handoffs = sorted(s["name"] for s in spans if s["name"].startswith("handoff"))
    assert handoffs == ["handoff billing -> refunds", "handoff triage -> billing"]

    run.assert_no_secrets(scenario.PROMPT, scenario.ANSWER, scenario.TOOL_OUTPUT,
                          scenario.INVOICE, "4111-1111")
