"""What the adapter sends for real crew runs (CrewAI's own event bus, scripted models):
the workflow, activations, handoffs (sequential tasks and delegation), LLM calls with
tokens, tool calls, guardrail blocks, failures and checkpoint saves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crewai.state.checkpoint_config import CheckpointConfig

from telemetry.adapters import crewai as adapter
from tests.adapters.crewai.scenario import (
    LOOKUP_TURN,
    RESEARCH_TURN,
    SECRETS,
    WRITE_TURN,
    delegating_crew,
    failing_crew,
    guarded_crew,
    research_crew,
)


def test_a_sequential_crew_in_order(instrumented, recorder) -> None:
    research_crew().kickoff()
    instrumented.flush()
    assert recorder.names() == [
        "workflow_started", "agent_activated", "llm_called", "tool_started",
        "tool_completed", "llm_called", "agent_deactivated", "handoff_started",
        "handoff_completed", "agent_activated", "llm_called", "agent_deactivated",
        "workflow_completed"]
    (started,) = recorder.named("workflow_started")
    workflow_id = started["workflow_id"]
    assert started["workflow_type"] == "crew"
    assert {fields.get("workflow_id") for _, fields in recorder.events} == {workflow_id}
    assert recorder.named("handoff_completed")[0]["from_agent"] == "researcher"
    assert recorder.named("handoff_completed")[0]["to_agent"] == "writer"
    calls = recorder.named("llm_called")
    assert [(c["agent"], c["model"], c["input_tokens"], c["output_tokens"]) for c in calls] == [
        ("researcher", "scripted-research", LOOKUP_TURN[1]["prompt_tokens"],
         LOOKUP_TURN[1]["completion_tokens"]),
        ("researcher", "scripted-research", RESEARCH_TURN[1]["prompt_tokens"],
         RESEARCH_TURN[1]["completion_tokens"]),
        ("writer", "scripted-writer", WRITE_TURN[1]["prompt_tokens"],
         WRITE_TURN[1]["completion_tokens"])]
    assert calls[0]["cached_input_tokens"] == 100
    (tool,) = recorder.named("tool_completed")
    assert tool["agent"] == "researcher" and tool["tool"] == "lookup"
    assert tool["call_key"] == recorder.named("tool_started")[0]["call_key"]
    assert "error_type" not in tool
    (done,) = recorder.named("workflow_completed")
    assert done["duration_s"] > 0
    assert not any(secret in json.dumps(recorder.events, default=str) for secret in SECRETS)
    assert instrumented.emitter.failures == 0


def test_delegation_is_a_handoff_to_the_coworker(instrumented, recorder) -> None:
    delegating_crew().kickoff()
    instrumented.flush()
    handoffs = [(h["from_agent"], h["to_agent"]) for h in recorder.named("handoff_completed")]
    assert handoffs == [("lead", "analyst")]
    # the analyst works inside the lead's delegation tool call
    assert recorder.names().index("handoff_completed") < recorder.names().index(
        "tool_completed")
    assert [a["agent"] for a in recorder.named("agent_activated")] == ["lead", "analyst"]
    (tool,) = recorder.named("tool_completed")
    assert tool["tool"] == "Delegate work to coworker" and tool["agent"] == "lead"


def test_a_guardrail_block_is_a_safety_block(instrumented, recorder) -> None:
    guarded_crew().kickoff()
    instrumented.flush()
    (blocked,) = recorder.named("safety_blocked")
    assert (blocked["agent"], blocked["rule"]) == ("writer", "no_secrets")
    assert blocked["workflow_id"] == recorder.named("workflow_started")[0]["workflow_id"]
    assert len(recorder.named("llm_called")) == 2  # the blocked answer and the retry
    assert len(recorder.named("workflow_completed")) == 1


def test_a_failed_kickoff_is_a_failed_workflow(instrumented, recorder) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever CrewAI raises for it
        failing_crew().kickoff()
    instrumented.flush()
    (failed,) = recorder.named("workflow_failed")
    assert failed["error_type"] == "crew_kickoff_failed"
    errors = {(e["agent"], e["error_type"]) for e in recorder.named("error_occurred")}
    assert ("writer", "agent_execution_error") in errors
    llm = recorder.named("llm_called")
    assert llm and all(c["error_type"] == "llm_call_failed" for c in llm)
    assert len(recorder.named("agent_activated")) == len(recorder.named("agent_deactivated"))


def test_checkpoints_are_state_saves(instrumented, recorder, tmp_path: Path) -> None:
    config = CheckpointConfig(location=str(tmp_path), on_events=["task_completed"])
    research_crew(with_tool=False, checkpoint=config).kickoff()
    instrumented.flush()
    saves = recorder.named("state_saved")
    assert len(saves) == 2  # one per task
    assert all(save["duration_s"] >= 0 and save["size_bytes"] == 0 for save in saves)


def test_instrument_is_idempotent_and_uninstrument_stops_the_signals(recorder) -> None:
    handle = adapter.instrument()
    try:
        assert adapter.instrument() is handle
        research_crew().kickoff()
        handle.flush()
        assert len(recorder.named("workflow_completed")) == 1  # not twice
    finally:
        handle.uninstrument()
    handle.uninstrument()  # harmless
    assert not handle.active
    recorder.events.clear()
    research_crew().kickoff()
    handle.flush()
    assert recorder.events == []
    again = adapter.instrument()
    try:
        assert again is not handle
    finally:
        again.uninstrument()


def test_a_failing_adapter_path_is_counted_and_the_crew_still_runs(
        instrumented, recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("adapter bug")

    monkeypatch.setitem(adapter.EXTRACTORS, adapter.tool_usage_events.ToolUsageStartedEvent,
                        broken)
    instrumented.uninstrument()
    handle = adapter.instrument()  # its listener reads the broken extractor
    try:
        result = research_crew().kickoff()
        handle.flush()
        assert result.raw == "the report"
        assert handle.emitter.failures == 1
        assert len(recorder.named("workflow_completed")) == 1
        assert recorder.named("tool_started") == []
    finally:
        handle.uninstrument()
