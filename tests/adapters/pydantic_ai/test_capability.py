"""The capability on its own terms: errors, concurrent delegations, the capability
given by hand, a failing adapter path that leaves the run alone, uninstrument, and our
spans joining the trace of Pydantic AI's own OpenTelemetry instrumentation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from telemetry import Telemetry
from telemetry.adapters import pydantic_ai as adapter
from tests.adapters.pydantic_ai import scenario
from tests.adapters.support import (
    LookupFailed,
    assert_failed_tool_run,
    assert_failure_counted,
    break_adapter_path,
    metrics_text,
    sample,
)
from tests.support.backends import rotel_receiver


def calling(tool: str, then: str = "done"):
    """A FunctionModel function: call ``tool`` once, then answer ``then``."""
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart(tool, {"key": "k"})])
        return ModelResponse(parts=[TextPart(then)])
    return model


def test_a_failing_tool_fails_the_run_and_counts_as_tool_and_agent_error(
        start_telemetry, instrumented) -> None:
    clerk = Agent(FunctionModel(calling("lookup")), name="clerk")

    @clerk.tool_plain
    def lookup(key: str) -> str:
        raise LookupFailed(f"no record for {scenario.PROMPT}")

    tel: Telemetry = start_telemetry()
    with pytest.raises(LookupFailed):
        clerk.run_sync(scenario.PROMPT)
    # errors: once for the tool call, once for the run it failed
    assert_failed_tool_run(metrics_text(tel), "clerk", "lookup", "LookupFailed", errors=2)


def test_a_failing_model_request_is_an_llm_error(start_telemetry, instrumented) -> None:
    def broken(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ConnectionError("provider down")

    agent = Agent(FunctionModel(broken, model_name="flaky"), name="writer")
    tel: Telemetry = start_telemetry()
    with pytest.raises(ConnectionError):
        agent.run_sync("write")
    text = metrics_text(tel)
    assert sample(text, "yolo_llm_errors_total", agent="writer", model="flaky",
                  error_type="ConnectionError") == 1
    assert sample(text, "yolo_workflows_total", outcome="failed") == 1


def test_a_streamed_run_is_counted_like_any_other(start_telemetry, instrumented) -> None:
    agent = Agent(TestModel(custom_output_text="streamed words"), name="streamer")

    async def stream() -> str:
        async with agent.run_stream("go") as run:
            return "".join([chunk async for chunk in run.stream_text(delta=True)])

    tel: Telemetry = start_telemetry()
    assert asyncio.run(stream()) == "streamed words"
    text = metrics_text(tel)
    assert sample(text, "yolo_llm_calls_total", agent="streamer", model="test") == 1
    assert sample(text, "yolo_llm_token_usage_sum", agent="streamer", model="test",
                  token_type="output") > 0
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1


def test_concurrent_delegations_keep_their_own_stacks(start_telemetry, instrumented) -> None:
    researcher = Agent(TestModel(custom_output_text="found"), name="researcher")

    def lead(name: str) -> Agent:
        agent = Agent(FunctionModel(calling("ask")), name=name)

        @agent.tool
        async def ask(ctx: RunContext[None], key: str) -> str:
            await asyncio.sleep(0.01)  # let the other lead's run interleave
            return (await researcher.run(key, usage=ctx.usage)).output

        return agent

    async def both() -> list[Any]:
        return await asyncio.gather(lead("lead_a").run("a"), lead("lead_b").run("b"))

    tel: Telemetry = start_telemetry()
    assert [r.output for r in asyncio.run(both())] == ["done", "done"]
    text = metrics_text(tel)
    for name in ("lead_a", "lead_b"):
        assert sample(text, "yolo_handoffs_total", from_agent=name, to_agent="researcher") == 1
        assert sample(text, "yolo_tool_calls_total", agent=name, tool="ask") == 1
    assert sample(text, "yolo_llm_calls_total", agent="researcher", model="test") == 2
    assert sample(text, "yolo_workflows_total", outcome="completed") == 2


def test_the_capability_alone_works_and_with_instrument_counts_once(start_telemetry) -> None:
    tel: Telemetry = start_telemetry()
    result = scenario.story(capabilities=[adapter.TelemetryCapability()])  # no instrument()
    assert result.output == scenario.ANSWER
    with adapter.instrument():  # the lead's own and the instrumentation's: reported once
        scenario.story(capabilities=[adapter.TelemetryCapability()])
    text = metrics_text(tel)
    assert sample(text, "yolo_llm_calls_total", agent="lead", model="function:lead_model:") == 4
    assert sample(text, "yolo_workflows_total", outcome="completed") == 2
    # the researcher had no capability of its own: seen only while instrumented
    assert sample(text, "yolo_handoffs_total", from_agent="lead", to_agent="researcher") == 1


def test_a_failing_adapter_path_is_counted_and_the_run_still_succeeds(
        start_telemetry, instrumented, monkeypatch: pytest.MonkeyPatch) -> None:
    break_adapter_path(monkeypatch, adapter, "_call_key")
    tel: Telemetry = start_telemetry()
    assert scenario.story().output == scenario.ANSWER
    # one failure: the one tool completion
    assert_failure_counted(metrics_text(tel), "pydantic_ai", 1, ("lead", "researcher"))


def test_instrument_is_idempotent_and_uninstrument_restores_and_stops(start_telemetry) -> None:
    original = Agent.__dict__["iter"]
    handle = adapter.instrument()
    assert adapter.instrument() is handle
    assert Agent.__dict__["iter"] is not original
    tel: Telemetry = start_telemetry()
    scenario.story()
    handle.uninstrument()
    handle.uninstrument()
    assert Agent.__dict__["iter"] is original
    first = metrics_text(tel)
    scenario.story()
    second = metrics_text(tel)
    for metrics in (first, second):
        assert sample(metrics, "yolo_workflows_total", outcome="completed") == 1
        assert sample(metrics, "yolo_handoffs_total", from_agent="lead",
                      to_agent="researcher") == 1
    again = adapter.instrument()
    assert again is not handle and again.active
    again.uninstrument()


@pytest.mark.backend
def test_our_spans_join_the_trace_of_pydantic_ai_instrumentation(
        tmp_path: Path, start_telemetry, instrumented) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from pydantic_ai.models.instrumented import InstrumentationSettings

    theirs = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    with rotel_receiver(tmp_path) as rotel:
        tel: Telemetry = start_telemetry({"exporters": {"otlp": {
            "enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600}}})
        Agent.instrument_all(InstrumentationSettings(tracer_provider=provider))
        try:
            scenario.story()
        finally:
            Agent.instrument_all(False)
        tel.stop()
        ours = rotel.wait_for_spans(lambda s: s["name"].startswith("invoke_workflow"))
    their_spans = theirs.get_finished_spans()
    assert their_spans  # the run span ("invoke_agent lead", "agent run" before 2.0), ...
    their_trace_ids = {format(span.context.trace_id, "032x") for span in their_spans}
    assert len(their_trace_ids) == 1
    assert ours[0]["trace_id"] in their_trace_ids
