"""LLM and tool call spans (``chat {model}``, ``execute_tool {tool}``) under the agent
span with the GenAI attributes, and the loop and repeat span events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from telemetry.aggregation.aggregator import Aggregator
from tests.conftest import FakeClock, send
from tests.unit.tracing.test_tracing import T0, Traced, ns


@pytest.fixture
def spans(aggregator: Aggregator, clock: FakeClock) -> Iterator[Traced]:
    traced = Traced(aggregator, clock)
    send("workflow_started", workflow_id="wf", timestamp=T0)
    send("agent_activated", agent="dev", workflow_id="wf", timestamp=T0 + 1)
    yield traced
    traced.tracer.close()
    traced.provider.shutdown()


def finish(traced: Traced) -> dict[str, ReadableSpan]:
    send("agent_deactivated", agent="dev", workflow_id="wf", timestamp=T0 + 100)
    send("workflow_completed", workflow_id="wf", duration_s=100.0, timestamp=T0 + 100)
    return {span.name: span for span in traced.spans()}


def test_an_llm_call_is_a_chat_span_under_the_agent(spans: Traced) -> None:
    send("llm_called", agent="dev", model="claude-sonnet", duration_s=2.0, input_tokens=1200,
         output_tokens=300, cached_input_tokens=1000, provider="anthropic", cost_usd=0.01,
         workflow_id="wf", timestamp=T0 + 10)
    found = finish(spans)
    chat, agent = found["chat claude-sonnet"], found["invoke_agent dev"]
    assert chat.parent is not None and chat.parent.span_id == agent.context.span_id
    assert (chat.start_time, chat.end_time) == (ns(T0 + 8), ns(T0 + 10))
    assert dict(chat.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet",
        "gen_ai.agent.name": "dev", "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.provider.name": "anthropic", "yolo.llm.cost_usd": 0.01,
        "gen_ai.conversation.id": "wf"}
    assert chat.status.status_code is StatusCode.UNSET


def test_a_failed_llm_call_has_its_error_type_and_status(spans: Traced) -> None:
    send("llm_called", agent="dev", model="m", duration_s=1.0, input_tokens=5,
         output_tokens=0, error_type="RateLimited", operation="text_completion",
         workflow_id="wf", timestamp=T0 + 10)
    chat = finish(spans)["text_completion m"]
    assert chat.attributes["error.type"] == "RateLimited"
    assert chat.attributes["gen_ai.operation.name"] == "text_completion"
    assert "gen_ai.provider.name" not in chat.attributes  # the exporter may add its own
    assert chat.status.status_code is StatusCode.ERROR


def test_a_tool_call_is_an_execute_tool_span_without_its_call_key(spans: Traced) -> None:
    send("tool_started", agent="dev", tool="pytest", call_key="secret-args", workflow_id="wf",
         timestamp=T0 + 4)
    send("tool_completed", agent="dev", tool="pytest", duration_s=3.0, call_key="secret-args",
         error_type="Exit1", workflow_id="wf", timestamp=T0 + 7)
    found = finish(spans)
    tool = found["execute_tool pytest"]
    assert tool.parent is not None
    assert tool.parent.span_id == found["invoke_agent dev"].context.span_id
    assert (tool.start_time, tool.end_time) == (ns(T0 + 4), ns(T0 + 7))
    assert dict(tool.attributes) == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "pytest",
        "gen_ai.agent.name": "dev", "error.type": "Exit1", "gen_ai.conversation.id": "wf"}
    assert tool.status.status_code is StatusCode.ERROR
    every_value = [str(v) for span in spans.spans() for v in span.attributes.values()]
    every_value += [str(v) for span in spans.spans() for event in span.events
                    for v in event.attributes.values()]
    assert not any("secret-args" in value for value in every_value)


def test_repeated_tool_calls_carry_a_repeat_event(spans: Traced) -> None:
    for second in range(4):
        send("tool_completed", agent="dev", tool="search", duration_s=0.5, call_key="same",
             workflow_id="wf", timestamp=T0 + 10 + second)
    tools = [span for span in spans.spans() if span.name == "execute_tool search"]
    runs = [[dict(event.attributes)["yolo.tool_call.run"] for event in span.events
             if event.name == "yolo.tool_call.repeated"] for span in tools]
    assert runs == [[], [], [3], [4]]


def test_a_handoff_loop_is_an_event_on_the_workflow_span(spans: Traced) -> None:
    for second, (source, target) in enumerate([("pm", "dev"), ("dev", "qa"), ("qa", "pm")]):
        send("handoff_completed", from_agent=source, to_agent=target, duration_s=0.5,
             workflow_id="wf", timestamp=T0 + 20 + second)
    workflow = finish(spans)["invoke_workflow"]
    loops = [(event.timestamp, dict(event.attributes)) for event in workflow.events
             if event.name == "yolo.handoff.loop"]
    assert loops == [(ns(T0 + 22), {"gen_ai.agent.name": "pm", "yolo.handoff.from_agent": "qa",
                                    "yolo.handoff.to_agent": "pm"})]
    assert sum(span.name.startswith("handoff ") for span in spans.spans()) == 3
