"""A CrewAI application, instrumented, as operators see it: /metrics, /health and
spans at a real OTLP receiver (rotel). No prompt, task text, tool argument or output
may reach any of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from telemetry import Telemetry
from tests.adapters.crewai.scenario import (
    LOOKUP_TURN,
    RESEARCH_TURN,
    SECRETS,
    WRITE_TURN,
    delegating_crew,
    guarded_crew,
    research_crew,
)
from tests.adapters.support import assert_none_of, scrape, value
from tests.support.backends import rotel_receiver
from tests.support.faults import get_json

pytestmark = pytest.mark.backend

RESEARCH = {"agent": "researcher", "model": "scripted-research"}


def test_metrics_and_health(instrumented, start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry()
    for make in (research_crew, delegating_crew, guarded_crew):
        make().kickoff()
    instrumented.flush()

    text, series = scrape(tel)
    assert value(series, "yolo_workflows_total", outcome="completed") == 3
    assert value(series, "yolo_handoffs_total", from_agent="researcher", to_agent="writer") == 1
    assert value(series, "yolo_handoffs_total", from_agent="lead", to_agent="analyst") == 1
    assert value(series, "yolo_safety_blocks_total", agent="writer", rule="no_secrets") == 1
    assert value(series, "yolo_agents_active") == 0
    assert value(series, "yolo_llm_calls_total", **RESEARCH) == 2
    inputs = LOOKUP_TURN[1]["prompt_tokens"] + RESEARCH_TURN[1]["prompt_tokens"]
    outputs = LOOKUP_TURN[1]["completion_tokens"] + RESEARCH_TURN[1]["completion_tokens"]
    assert value(series, "yolo_llm_token_usage_sum", **RESEARCH, token_type="input") == inputs
    assert value(series, "yolo_llm_token_usage_sum", **RESEARCH, token_type="output") == outputs
    assert value(series, "yolo_llm_token_usage_sum", **RESEARCH,
                 token_type="cached_input") == 100
    writer = {"agent": "writer", "model": "scripted-writer"}
    assert value(series, "yolo_llm_token_usage_sum", **writer,
                 token_type="output") == 2 * WRITE_TURN[1]["completion_tokens"] + RESEARCH_TURN[
                     1]["completion_tokens"]  # the guarded crew's blocked answer and retry
    assert value(series, "yolo_tool_calls_total", agent="researcher", tool="lookup") == 1
    assert value(series, "yolo_tool_calls_total", agent="lead",
                 tool="Delegate work to coworker") == 1
    assert value(series, "yolo_telemetry_invalid_events_total") in (None, 0)
    assert value(series, "yolo_telemetry_dropped_total", component="adapter_crewai",
                 reason="exception") in (None, 0)
    status, health = get_json(f"{tel.url}/health")
    assert status == 200 and health["agents_active"] == 0
    assert_none_of(SECRETS, text, json.dumps(health))


def test_spans_at_a_real_otlp_receiver_join_the_callers_trace(
        instrumented, start_telemetry: Callable[..., Telemetry], tmp_path: Path) -> None:
    with rotel_receiver(tmp_path) as rotel:
        tel = start_telemetry({"exporters": {"otlp": {
            "enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600}}})
        request = TracerProvider().get_tracer("web-app")
        with request.start_as_current_span("POST /report") as outer:
            research_crew().kickoff()  # inside a traced request
        instrumented.flush()
        tel.stop()
        expected = 1 + 2 + 1 + 3 + 1  # workflow, agents, handoff, chats, tool
        spans = rotel.wait_for_spans(count=expected)
        output = rotel.output()
    assert len(spans) == expected
    by_id = {span["span_id"]: span for span in spans}
    names = sorted(span["name"] for span in spans)
    assert names.count("invoke_workflow crew") == 1
    assert names.count("invoke_agent researcher") == 1
    assert names.count("handoff researcher -> writer") == 1
    request_context = outer.get_span_context()
    assert {span["trace_id"] for span in spans} == {f"{request_context.trace_id:032x}"}
    (workflow,) = [s for s in spans if s["name"] == "invoke_workflow crew"]
    assert workflow["parent_span_id"] == f"{request_context.span_id:016x}"
    chats = [s for s in spans if s["name"] == "chat scripted-research"]
    assert len(chats) == 2
    for chat in chats:
        assert by_id[chat["parent_span_id"]]["name"] == "invoke_agent researcher"
    (tool,) = [s for s in spans if s["name"] == "execute_tool lookup"]
    assert by_id[tool["parent_span_id"]]["name"] == "invoke_agent researcher"
    assert_none_of(SECRETS, output)
