"""The delegation story (lead -> researcher through a tool) as our metrics at a real
scrape of /metrics, spans at the real rotel receiver, and /health."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.pydantic_ai import scenario
from tests.adapters.support import run_story, sample

pytestmark = pytest.mark.backend


def test_the_delegation_shows_in_metrics_spans_and_health(tmp_path: Path, start_telemetry,
                                                          instrumented) -> None:
    run = run_story(tmp_path, start_telemetry, scenario.story)
    result, metrics, health, spans = run.result, run.metrics, run.health, run.spans
    assert result.output == scenario.ANSWER

    # the delegation is a handoff, and the run is one workflow
    assert sample(metrics, "yolo_handoffs_total", from_agent="lead", to_agent="researcher") == 1
    assert sample(metrics, "yolo_handoff_duration_seconds_count", from_agent="lead",
                  to_agent="researcher") == 1
    assert sample(metrics, "yolo_workflows_total", outcome="completed") == 1
    assert sample(metrics, "yolo_agents_active") == 0
    # tool and LLM calls per agent
    assert sample(metrics, "yolo_tool_calls_total", agent="lead", tool="ask_researcher") == 1
    lead_model = "function:lead_model:"
    assert sample(metrics, "yolo_llm_calls_total", agent="lead", model=lead_model) == 2
    assert sample(metrics, "yolo_llm_calls_total", agent="researcher", model="test") == 1
    # our token totals are the run's usage (ctx.usage, the researcher's included)
    usage = scenario.run_usage(result)
    tokens = {kind: sum(sample(metrics, "yolo_llm_token_usage_sum", agent=agent, model=model,
                               token_type=kind)
                        for agent, model in (("lead", lead_model), ("researcher", "test")))
              for kind in ("input", "output")}
    assert tokens == {"input": usage.input_tokens, "output": usage.output_tokens}
    assert sample(metrics, "yolo_llm_token_usage_sum", agent="lead", model=lead_model,
                  token_type="input") == sum(i for i, _ in scenario.LEAD_TOKENS)
    assert usage.requests == 3
    assert "adapter_pydantic_ai" not in metrics
    assert sample(metrics, "yolo_telemetry_invalid_events_total") == 0

    # /health: workflow 2, agents 4, handoff 2, LLM 3, tool 2
    assert run.status == 200 and health["status"] == "healthy"
    assert health["events_total"] == 13
    assert health["agents_active"] == 0

    # spans: one trace; the researcher's run and the tool inside the lead's
    by_name = {s["name"]: s for s in spans}
    for name in ("invoke_agent lead", "invoke_agent researcher", "execute_tool ask_researcher",
                 f"chat {lead_model}", "chat test", "handoff lead -> researcher"):
        assert name in by_name, f"no span {name!r} in {sorted(by_name)}"
    assert len({s["trace_id"] for s in spans}) == 1
    lead = by_name["invoke_agent lead"]
    assert by_name["execute_tool ask_researcher"]["parent_span_id"] == lead["span_id"]
    assert by_name["chat test"]["attributes"]["gen_ai.usage.input_tokens"] > 0

    run.assert_no_secrets(scenario.PROMPT, scenario.ANSWER, scenario.RESEARCH, "4111-1111")
