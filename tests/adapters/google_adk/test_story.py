"""The transfer story (triage -> billing, which calls a tool and answers) as our metrics
at a real scrape of /metrics, spans at the real rotel receiver, and /health."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.google_adk import scenario
from tests.adapters.support import run_story, sample

pytestmark = pytest.mark.backend


def test_the_transfer_shows_in_metrics_spans_and_health(tmp_path: Path, start_telemetry,
                                                        instrumented) -> None:
    run = run_story(tmp_path, start_telemetry, scenario.story)
    metrics, health, spans = run.metrics, run.health, run.spans
    assert scenario.final_text(run.result) == scenario.ANSWER

    # the transfer is a handoff, and the invocation one workflow
    assert sample(metrics, "yolo_handoffs_total", from_agent="triage", to_agent="billing") == 1
    assert sample(metrics, "yolo_handoff_duration_seconds_count", from_agent="triage",
                  to_agent="billing") == 1
    assert sample(metrics, "yolo_workflows_total", outcome="completed") == 1
    assert sample(metrics, "yolo_agents_active") == 0  # triage closed on its transfer
    # tool and LLM calls per agent, with the scripted usage; the transfer is no tool call
    assert sample(metrics, "yolo_tool_calls_total", agent="billing", tool="lookup_order") == 1
    assert sample(metrics, "yolo_tool_calls_total", agent="triage",
                  tool="transfer_to_agent") == 0
    assert sample(metrics, "yolo_llm_calls_total", agent="triage", model="scripted-triage") == 1
    assert sample(metrics, "yolo_llm_calls_total", agent="billing", model="scripted-billing") == 2
    for agent, model in (("triage", "scripted-triage"), ("billing", "scripted-billing")):
        for kind, column in (("input", 1), ("output", 2)):
            expected = sum(call[column] for call in scenario.CALLS if call[0] == agent)
            assert sample(metrics, "yolo_llm_token_usage_sum", agent=agent, model=model,
                          token_type=kind) == expected
    assert "adapter_google_adk" not in metrics
    assert sample(metrics, "yolo_telemetry_invalid_events_total") == 0

    # /health: workflow 2, agents 4, handoff 2, LLM 3, tool 2
    assert run.status == 200 and health["status"] == "healthy"
    assert health["events_total"] == 13
    assert health["agents_active"] == 0
    otlp = health["checks"]["exporter:otlp"]
    assert otlp["traces"]["export_path"] in ("fast", "sdk")  # sdk on the 1.44 floor

    # spans: ours (scope yolo-telemetry) and ADK's own, which go out through the same
    # provider, in one trace; the tool inside billing's activation
    ours = {s["name"]: s for s in spans if s["scope"] == "yolo-telemetry"}
    theirs = {s["span_id"]: s for s in spans if s["scope"] != "yolo-telemetry"}
    for name in ("invoke_agent triage", "invoke_agent billing", "execute_tool lookup_order",
                 "chat scripted-triage", "chat scripted-billing", "handoff triage -> billing"):
        assert name in ours, f"no span {name!r} in {sorted(ours)}"
    assert "execute_tool transfer_to_agent" not in ours
    assert theirs and len({s["trace_id"] for s in spans}) == 1
    workflow = ours["invoke_workflow google_adk"]
    assert workflow["parent_span_id"] in theirs  # ADK's invocation span: we join its trace
    billing = ours["invoke_agent billing"]
    assert ours["execute_tool lookup_order"]["parent_span_id"] == billing["span_id"]
    assert ours["chat scripted-triage"]["attributes"]["gen_ai.usage.input_tokens"] == 40

    # the card number with its dash: bare digits turn up in nanosecond timestamps
    run.assert_no_secrets(scenario.PROMPT, scenario.ANSWER, scenario.TOOL_RESULT, scenario.ORDER,
                          "4111-1111")
