"""The middleware and the workflow observer on their own terms: standalone runs, errors,
streaming, delegation through an agent used as a tool, the middleware given by hand, a
human-in-the-loop pause and resume, a failing adapter path that leaves the run alone,
instrument twice, and uninstrument."""

from __future__ import annotations

import asyncio

import blinker
import pytest
from agent_framework import Agent, tool
from agent_framework_orchestrations import HandoffAgentUserRequest, HandoffBuilder

from telemetry.adapters import agent_framework as adapter
from tests.adapters.agent_framework import scenario
from tests.adapters.agent_framework.scripted import ScriptedChatClient, Turn, call, say
from tests.adapters.support import (
    LookupFailed,
    assert_failed_model_run,
    assert_failure_counted,
    break_adapter_path,
    metrics_text,
    sample,
)
from tests.support.faults import get_json


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


@tool
def broken_lookup(key: str) -> str:
    """Fail."""
    raise LookupFailed(f"no record for {scenario.PROMPT}")


def run(agent: Agent, prompt: str = scenario.PROMPT, **options) -> str:
    return asyncio.run(agent.run(prompt, **options)).text


def test_a_standalone_run_is_a_workflow_with_its_calls(start_telemetry, instrumented) -> None:
    agent = Agent(client=ScriptedChatClient([call("lookup", 40, 2, key="k"), say("done", 60, 9)],
                                            model="m1"), name="clerk", tools=[lookup])
    tel = start_telemetry()
    assert run(agent) == "done"
    text = metrics_text(tel)
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1
    assert sample(text, "yolo_llm_calls_total", agent="clerk", model="m1") == 2
    assert sample(text, "yolo_llm_token_usage_sum", agent="clerk", model="m1",
                  token_type="input") == 100
    assert sample(text, "yolo_tool_calls_total", agent="clerk", tool="lookup") == 1
    assert sample(text, "yolo_agents_active") == 0


def test_a_failing_tool_is_a_tool_error_and_the_run_goes_on(start_telemetry,
                                                           instrumented) -> None:
    agent = Agent(client=ScriptedChatClient([call("broken_lookup", key="k"), say("sorry")]),
                  name="clerk", tools=[broken_lookup])
    tel = start_telemetry()
    assert run(agent) == "sorry"  # the framework hands the failure to the model
    text = metrics_text(tel)
    assert sample(text, "yolo_tool_errors_total", agent="clerk", tool="broken_lookup",
                  error_type="LookupFailed") == 1
    assert sample(text, "yolo_errors_total", agent="clerk", error_type="LookupFailed") == 1
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1
    assert "4111-1111" not in text  # the card number, not digits a timestamp may hold


def test_a_failing_model_call_is_an_llm_error_and_fails_the_run(start_telemetry,
                                                                instrumented) -> None:
    agent = Agent(client=ScriptedChatClient([Turn(fails=ConnectionError)], model="flaky"),
                  name="writer")
    tel = start_telemetry()
    with pytest.raises(ConnectionError):
        run(agent)
    # errors: once for the model call, once for the run it failed
    assert_failed_model_run(metrics_text(tel), "writer", "flaky", "ConnectionError", errors=2)


def test_a_streamed_run_is_counted_when_its_stream_is_read(start_telemetry,
                                                           instrumented) -> None:
    script = [call("lookup", 11, 1, key="k"), say("streamed", 13, 2)]
    agent = Agent(client=ScriptedChatClient(script, model="m2"), name="streamer",
                  tools=[lookup])
    tel = start_telemetry()

    async def read() -> str:
        return "".join([update.text async for update in agent.run("go", stream=True)])

    assert asyncio.run(read()) == "streamed"
    text = metrics_text(tel)
    assert sample(text, "yolo_llm_calls_total", agent="streamer", model="m2") == 2
    assert sample(text, "yolo_llm_token_usage_sum", agent="streamer", model="m2",
                  token_type="input") == 24
    assert sample(text, "yolo_tool_calls_total", agent="streamer", tool="lookup") == 1
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1
    assert sample(text, "yolo_agents_active") == 0


def test_an_agent_used_as_a_tool_is_a_handoff(start_telemetry, instrumented) -> None:
    researcher = Agent(client=ScriptedChatClient([say("found it")], model="r"),
                       name="researcher", description="Researches.")
    lead = Agent(client=ScriptedChatClient([call("researcher", task="look"), say("done")],
                                           model="l"),
                 name="lead", tools=[researcher.as_tool(name="researcher")])
    tel = start_telemetry()
    assert run(lead) == "done"
    text = metrics_text(tel)
    assert sample(text, "yolo_handoffs_total", from_agent="lead", to_agent="researcher") == 1
    assert sample(text, "yolo_llm_calls_total", agent="researcher", model="r") == 1
    assert sample(text, "yolo_tool_calls_total", agent="lead", tool="researcher") == 1
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1  # one, not two


def test_the_middleware_given_by_hand_reports_without_instrument(start_telemetry) -> None:
    agent = Agent(client=ScriptedChatClient([call("lookup", key="k"), say("done")]),
                  name="manual", tools=[lookup], middleware=adapter.middleware())
    tel = start_telemetry()
    assert run(agent) == "done"
    with adapter.instrument():  # and with instrument() too, each call is reported once
        agent.client.script.extend([say("again")])
        assert run(agent) == "again"
    text = metrics_text(tel)
    assert sample(text, "yolo_llm_calls_total", agent="manual", model="scripted-1") == 3
    assert sample(text, "yolo_tool_calls_total", agent="manual", tool="lookup") == 1
    assert sample(text, "yolo_workflows_total", outcome="completed") == 2


def test_a_pending_request_pauses_the_workflow_until_answered(start_telemetry,
                                                              instrumented) -> None:
    workflow = scenario.workflow(terminate=False)
    tel = start_telemetry()
    seen: dict = {}

    async def ask_then_answer() -> None:  # one event loop: the workflow's queues live in it
        first = await workflow.run(scenario.PROMPT)
        seen["requests"] = first.get_request_info_events()
        seen["paused"] = metrics_text(tel)
        seen["health"] = get_json(f"{tel.url}/health")
        await workflow.run(responses={seen["requests"][0].request_id:
                                      HandoffAgentUserRequest.terminate()})

    asyncio.run(ask_then_answer())
    requests, paused, (status, health) = seen["requests"], seen["paused"], seen["health"]
    assert len(requests) == 1 and isinstance(requests[0].data, HandoffAgentUserRequest)
    resumed = metrics_text(tel)
    assert sample(paused, "yolo_mode", mode="paused") == 1
    assert sample(paused, "yolo_workflows_in_flight") == 1
    assert sample(paused, "yolo_workflows_total", outcome="completed") == 0
    assert sample(paused, "yolo_handoffs_total", from_agent="billing", to_agent="refunds") == 1
    assert status == 200 and health["mode"] == "paused"
    assert sample(resumed, "yolo_mode", mode="active") == 1
    assert sample(resumed, "yolo_workflows_in_flight") == 0
    assert sample(resumed, "yolo_workflows_total", outcome="completed") == 1


def test_a_failing_adapter_path_is_counted_and_the_run_succeeds(start_telemetry, instrumented,
                                                                 monkeypatch) -> None:
    break_adapter_path(monkeypatch, adapter, "_call_key")
    tel = start_telemetry()
    assert scenario.story() == scenario.ANSWER
    text = metrics_text(tel)
    assert_failure_counted(text, "agent_framework", 1, ("billing", "refunds"))
    assert sample(text, "yolo_tool_calls_total", agent="billing", tool="lookup_invoice") == 0


def test_instrument_twice_is_one_instrumentation(start_telemetry, instrumented) -> None:
    assert adapter.instrument() is instrumented
    tel = start_telemetry()
    scenario.story()
    text = metrics_text(tel)
    assert sample(text, "yolo_handoffs_total", from_agent="triage", to_agent="billing") == 1
    assert sample(text, "yolo_llm_calls_total", agent="refunds", model="refunds-model") == 1


def test_uninstrument_stops_the_signals_and_restores_the_framework() -> None:
    from agent_framework import AgentMiddlewareLayer, Workflow

    originals = AgentMiddlewareLayer.__dict__["run"], Workflow.__dict__["_run_core"]
    seen: list[str] = []

    def count(sender, **fields) -> None:
        seen.append(sender)

    handle = adapter.instrument()
    for name in ("yolo.workflow_started", "yolo.llm_called", "yolo.handoff_started"):
        blinker.signal(name).connect(count)
    try:
        scenario.story()
        during = len(seen)
        handle.uninstrument()
        handle.uninstrument()  # idempotent
        scenario.story()
    finally:
        for name in ("yolo.workflow_started", "yolo.llm_called", "yolo.handoff_started"):
            blinker.signal(name).disconnect(count)
    assert during == 1 + 4 + 2
    assert len(seen) == during
    assert (AgentMiddlewareLayer.__dict__["run"], Workflow.__dict__["_run_core"]) == originals
    assert not handle.active


def test_a_failing_agent_fails_its_workflow(start_telemetry, instrumented) -> None:
    triage = scenario.agent("triage", [scenario.handoff_to("billing", (5, 1))])
    billing = scenario.agent("billing", [Turn(fails=TimeoutError)])
    workflow = HandoffBuilder(participants=[triage, billing]).with_start_agent(triage).build()
    tel = start_telemetry()
    with pytest.raises(Exception):  # noqa: B017 (the framework may wrap the failure)
        asyncio.run(workflow.run(scenario.PROMPT))
    text = metrics_text(tel)
    assert sample(text, "yolo_workflows_total", outcome="failed") == 1
    assert sample(text, "yolo_workflows_in_flight") == 0
    assert sample(text, "yolo_handoffs_total", from_agent="triage", to_agent="billing") == 1
    assert sample(text, "yolo_llm_errors_total", agent="billing", model="billing-model",
                  error_type="TimeoutError") == 1
    assert sample(text, "yolo_errors_total", agent="billing", error_type="TimeoutError") == 2
    assert sample(text, "yolo_agents_active") == 0


def test_a_streamed_workflow_is_reported_like_a_run_one(start_telemetry, instrumented) -> None:
    tel = start_telemetry()

    async def read() -> list[str]:
        return [event.type async for event in scenario.workflow().run(scenario.PROMPT,
                                                                       stream=True)]

    kinds = asyncio.run(read())
    assert kinds.count("handoff_sent") == 2
    text = metrics_text(tel)
    for source, target in (("triage", "billing"), ("billing", "refunds")):
        assert sample(text, "yolo_handoffs_total", from_agent=source, to_agent=target) == 1
    assert sample(text, "yolo_llm_calls_total", agent="billing", model="billing-model") == 2
    assert sample(text, "yolo_llm_token_usage_sum", agent="billing", model="billing-model",
                  token_type="input") == sum(i for i, _ in scenario.BILLING_TOKENS)
    assert sample(text, "yolo_tool_calls_total", agent="billing", tool="lookup_invoice") == 1
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1
    assert sample(text, "yolo_agents_active") == 0
