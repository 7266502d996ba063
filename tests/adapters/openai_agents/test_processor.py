"""The processor on its own terms: what each SDK span becomes (driven through the SDK's
own tracing API where a scripted run cannot produce the span), and that the adapter
never breaks the application, keeps the user's processors and stops on uninstrument."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import Agent, Runner, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tracing import (
    SpanError,
    TracingProcessor,
    add_trace_processor,
    agent_span,
    custom_span,
    function_span,
    generation_span,
    handoff_span,
    set_trace_processors,
    trace,
)

from telemetry import Telemetry
from telemetry.adapters import openai_agents as adapter
from tests.adapters.openai_agents import scenario
from tests.adapters.openai_agents.conftest import registered_processors
from tests.adapters.support import break_adapter_path, metrics_text, sample


class Recorder(TracingProcessor):
    """A user's own processor: it must keep getting every span."""

    def __init__(self) -> None:
        self.spans: list[str] = []

    def on_trace_start(self, trace: Any) -> None: ...
    def on_trace_end(self, trace: Any) -> None: ...
    def on_span_start(self, span: Any) -> None: ...

    def on_span_end(self, span: Any) -> None:
        self.spans.append(span.span_data.type)

    def shutdown(self) -> None: ...
    def force_flush(self) -> None: ...


def test_model_spans_with_usage_are_llm_calls_and_a_late_to_agent_is_a_handoff(
        start_telemetry, instrumented) -> None:
    tel: Telemetry = start_telemetry()
    with trace("manual workflow"), agent_span(name="planner"):
        with generation_span(model="gpt-test") as generation:
            generation.span_data.usage = {"input_tokens": 120, "output_tokens": 40,
                                          "input_tokens_details": {"cached_tokens": 100}}
        with generation_span(model="gpt-test") as failed:
            failed.set_error(SpanError(message="Error getting response", data={}))
        with handoff_span(from_agent="planner") as handoff:  # to_agent: only known later
            handoff.span_data.to_agent = "coder"
    text = metrics_text(tel)
    labels = {"agent": "planner", "model": "gpt-test"}
    assert sample(text, "yolo_llm_calls_total", **labels) == 2
    assert sample(text, "yolo_llm_errors_total", **labels, error_type="model_error") == 1
    assert sample(text, "yolo_llm_token_usage_sum", **labels, token_type="input") == 120
    assert sample(text, "yolo_llm_token_usage_sum", **labels, token_type="cached_input") == 100
    assert sample(text, "yolo_llm_token_usage_sum", **labels, token_type="output") == 40
    assert sample(text, "yolo_handoffs_total", from_agent="planner", to_agent="coder") == 1
    assert sample(text, "yolo_errors_total", agent="planner", error_type="model_error") == 1
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1


def test_a_failing_tool_is_a_tool_error_and_its_message_stays_out(start_telemetry,
                                                                   instrumented) -> None:
    @function_tool
    def lookup(key: str) -> str:
        raise ValueError("the secret detail of a failure")

    agent = Agent(name="clerk", tools=[lookup], model=ScriptedModel([
        [function_call("lookup", {"key": "k"}, call_id="c1")],
        [assistant_message("done")]]))
    tel: Telemetry = start_telemetry()
    assert asyncio.run(Runner.run(agent, "look it up")).final_output == "done"
    text = metrics_text(tel)
    assert sample(text, "yolo_tool_calls_total", agent="clerk", tool="lookup") == 1
    assert sample(text, "yolo_tool_errors_total", agent="clerk", tool="lookup",
                  error_type="tool_error") == 1
    assert sample(text, "yolo_errors_total", agent="clerk", error_type="tool_error") == 1
    assert "secret detail" not in text


def test_the_same_tool_call_three_times_is_a_repeat(start_telemetry, instrumented) -> None:
    @function_tool
    def poll(job: str) -> str:
        return "pending"

    calls = [[function_call("poll", {"job": "42"}, call_id=f"c{n}")] for n in range(3)]
    agent = Agent(name="poller", tools=[poll],
                  model=ScriptedModel([*calls, [assistant_message("gave up")]]))
    tel: Telemetry = start_telemetry()
    asyncio.run(Runner.run(agent, "wait for job 42"))
    text = metrics_text(tel)
    assert sample(text, "yolo_tool_calls_total", agent="poller", tool="poll") == 3
    assert sample(text, "yolo_tool_call_repeats_total", agent="poller", tool="poll") == 1


def test_a_failing_adapter_path_is_counted_and_the_run_still_succeeds(
        start_telemetry, instrumented, monkeypatch: pytest.MonkeyPatch) -> None:
    break_adapter_path(monkeypatch, adapter.processor, "usage_tokens")
    tel: Telemetry = start_telemetry()
    assert scenario.story() == scenario.ANSWER
    text = metrics_text(tel)
    # one failure per turn, which reads its usage (three turns in run 1, one in run 2)
    assert sample(text, "yolo_telemetry_dropped_total", component="adapter_openai_agents",
                  reason="exception") == 4
    assert instrumented.processor.emitter.failures == 4  # type: ignore[attr-defined]
    # the rest of the mapping carried on
    assert sample(text, "yolo_handoffs_total", from_agent="triage", to_agent="weather") == 1
    assert sample(text, "yolo_safety_blocks_total", agent="guarded", rule="no_secrets") == 1


def test_instrument_is_idempotent_keeps_user_processors_and_uninstrument_stops(
        start_telemetry) -> None:
    recorder = Recorder()
    add_trace_processor(recorder)
    handle = adapter.instrument()
    assert adapter.instrument() is handle
    ours = [p for p in registered_processors() if isinstance(p, adapter.TelemetryProcessor)]
    assert len(ours) == 1 and recorder in registered_processors()

    tel: Telemetry = start_telemetry()
    scenario.story()
    handle.uninstrument()
    handle.uninstrument()
    assert registered_processors() == (recorder,)  # the user's processor, and only it
    first = metrics_text(tel)
    scenario.story()
    second = metrics_text(tel)
    for name, labels in (("yolo_handoffs_total", {"from_agent": "triage",
                                                  "to_agent": "weather"}),
                         ("yolo_workflows_total", {"outcome": "completed"})):
        assert sample(first, name, **labels) == 1
        assert sample(second, name, **labels) == 1  # nothing sent after uninstrument
    assert recorder.spans.count("handoff") == 2  # the user's processor saw both runs

    again = adapter.instrument()  # and it can be instrumented again
    assert again is not handle and again.active
    set_trace_processors([recorder])  # the application replaces the processors
    assert adapter.instrument() is again  # instrument() puts ours back
    assert registered_processors() == (recorder, again.processor)  # type: ignore[attr-defined]
    again.uninstrument()
    assert registered_processors() == (recorder,)


def test_traces_that_never_end_are_forgotten_within_the_bound(instrumented) -> None:
    processor = instrumented.processor  # type: ignore[attr-defined]
    for _ in range(adapter.MAX_TRACES + 50):
        trace("never ended").start()
    assert len(processor._runs) == adapter.MAX_TRACES


def test_spans_past_the_bound_are_timed_from_the_sdk_timestamps(
        start_telemetry, instrumented, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter.processor, "MAX_SPANS_PER_TRACE", 2)  # the module reading it
    tel: Telemetry = start_telemetry()
    with (trace("crowded"), agent_span(name="busy"), custom_span("step"),
          function_span(name="third_span", input='{"n": 1}')):  # the third: not remembered
        pass
    text = metrics_text(tel)
    assert sample(text, "yolo_tool_calls_total", agent="busy", tool="third_span") == 1
    assert sample(text, "yolo_tool_call_duration_seconds_count", agent="busy",
                  tool="third_span") == 1


def test_tool_and_agent_names_a_model_invents_stay_within_the_series_cap(
        start_telemetry, instrumented) -> None:
    tel: Telemetry = start_telemetry(limits={"max_series_per_metric": 50})
    with trace("hostile"):
        for number in range(500):
            with agent_span(name=f"agent-{number}"), function_span(name=f"tool-{number}"):
                pass
    text = metrics_text(tel)
    tool_series = [line for line in text.splitlines()
                   if line.startswith("yolo_tool_calls_total{")]
    assert len(tool_series) == 51  # the cap, and the overflow series
    assert sample(text, "yolo_tool_calls_total", agent="__overflow__",
                  tool="__overflow__") == 450


def test_a_streamed_run_maps_like_a_plain_one(start_telemetry, instrumented) -> None:
    async def streamed() -> str:
        result = Runner.run_streamed(scenario.handoff_agents(), scenario.PROMPT)
        async for _ in result.stream_events():
            pass
        return result.final_output

    tel: Telemetry = start_telemetry()
    assert asyncio.run(streamed()) == scenario.ANSWER
    text = metrics_text(tel)
    assert sample(text, "yolo_handoffs_total", from_agent="triage", to_agent="weather") == 1
    assert sample(text, "yolo_tool_calls_total", agent="weather", tool="get_weather") == 1
    assert sample(text, "yolo_llm_token_usage_sum", agent="weather", model="unknown",
                  token_type="input") == sum(i for i, _ in scenario.WEATHER_TOKENS)
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1
