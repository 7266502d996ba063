"""The plugin on its own terms: the transferring agent's activation, errors, the plugin
given by hand, a failing adapter path that leaves the run alone, instrument twice,
uninstrument, and the user's own plugins."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import blinker
import pytest
from google.adk.plugins.base_plugin import BasePlugin

from telemetry import Telemetry
from telemetry.adapters import google_adk as adapter
from telemetry.signals import CONTRACT
from tests.adapters.google_adk import scenario
from tests.adapters.support import (
    LookupFailed,
    assert_failed_model_run,
    assert_failed_tool_run,
    assert_failure_counted,
    break_adapter_path,
    metrics_text,
    sample,
)


@pytest.fixture
def signals() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every yolo.* signal the adapter sends, in order: (name without yolo., fields)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for spec in CONTRACT:
        def receive(sender: Any, _name: str = spec.name.removeprefix("yolo."),
                    **fields: Any) -> None:
            if str(sender).startswith("adapter:google_adk"):
                seen.append((_name, fields))
        blinker.signal(spec.name).connect(receive)
        receivers.append((spec.name, receive))
    yield seen
    for name, receive in receivers:
        blinker.signal(name).disconnect(receive)


def agent_events(seen: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(name, fields.get("agent") or f"{fields['from_agent']}->{fields['to_agent']}")
            for name, fields in seen
            if name in ("agent_activated", "agent_deactivated", "handoff_started",
                        "handoff_completed")]


def test_the_transferring_agent_is_closed_on_its_transfer(signals, instrumented) -> None:
    """ADK calls no after_agent_callback for triage, which transferred: its activation
    ends with the transfer, before billing's begins."""
    scenario.story()
    assert agent_events(signals) == [
        ("agent_activated", "triage"),
        ("handoff_started", "triage->billing"),
        ("agent_deactivated", "triage"),
        ("handoff_completed", "triage->billing"),
        ("agent_activated", "billing"),
        ("agent_deactivated", "billing"),
    ]
    names = [name for name, _ in signals]
    assert (names[0], names[-1]) == ("workflow_started", "workflow_completed")
    assert len({fields["workflow_id"] for _, fields in signals}) == 1


def test_concurrent_invocations_through_one_plugin_keep_their_own_state(signals) -> None:
    """One plugin, two runners, two invocations interleaved in one event loop."""
    import asyncio

    from google.adk.apps import App
    from google.adk.runners import InMemoryRunner
    from google.genai import types

    plugin = adapter.TelemetryPlugin()

    async def one(prompt: str) -> None:
        runner = InMemoryRunner(app=App(name="shop", root_agent=scenario.agents(),
                                        plugins=[plugin]))
        session = await runner.session_service.create_session(app_name="shop", user_id="u")
        message = types.Content(role="user", parts=[types.Part.from_text(text=prompt)])
        async for _event in runner.run_async(user_id="u", session_id=session.id,
                                             new_message=message):
            await asyncio.sleep(0)  # let the other invocation go on

    async def both() -> None:
        await asyncio.gather(one("a"), one("b"))

    asyncio.run(both())
    workflows = {fields["workflow_id"] for _, fields in signals}
    assert len(workflows) == 2
    for workflow in workflows:
        mine = [(name, fields) for name, fields in signals if fields["workflow_id"] == workflow]
        assert agent_events(mine) == [
            ("agent_activated", "triage"), ("handoff_started", "triage->billing"),
            ("agent_deactivated", "triage"), ("handoff_completed", "triage->billing"),
            ("agent_activated", "billing"), ("agent_deactivated", "billing")]
        assert [name for name, _ in mine].count("llm_called") == 3
    assert plugin._runs == {}  # nothing left open


def test_a_failing_tool_is_a_tool_error_and_fails_the_run_once(
        start_telemetry, instrumented) -> None:
    def lookup_order(order: str) -> dict:
        """Looks up an order's status."""
        raise LookupFailed(f"no record for {scenario.PROMPT}")

    tel: Telemetry = start_telemetry()
    with pytest.raises(LookupFailed):
        scenario.run(scenario.agents(tools=[lookup_order]))
    # one exception, reported by the tool, agent and run callbacks: one error
    assert_failed_tool_run(metrics_text(tel), "billing", "lookup_order", "LookupFailed",
                           errors=1)


def test_a_failing_model_call_is_an_llm_error(start_telemetry, instrumented) -> None:
    tel: Telemetry = start_telemetry()
    with pytest.raises(ConnectionError):
        scenario.run(scenario.agents(billing_script=[ConnectionError(scenario.PROMPT)]))
    assert_failed_model_run(metrics_text(tel), "billing", "scripted-billing",
                            "ConnectionError", errors=1)


def test_the_plugin_given_by_hand_works_and_instrument_adds_no_second(
        start_telemetry, signals) -> None:
    tel: Telemetry = start_telemetry()
    plugin = adapter.TelemetryPlugin()
    scenario.run(scenario.agents(), plugins=[plugin])  # no instrument()
    with adapter.instrument():  # the runner has ours already: reported once
        scenario.run(scenario.agents(), plugins=[adapter.TelemetryPlugin()])
    text = metrics_text(tel)
    assert sample(text, "yolo_handoffs_total", from_agent="triage", to_agent="billing") == 2
    assert sample(text, "yolo_workflows_total", outcome="completed") == 2
    assert sample(text, "yolo_llm_calls_total", agent="billing", model="scripted-billing") == 4


def test_instrument_twice_is_one_plugin_and_uninstrument_stops_the_signals(
        start_telemetry) -> None:
    class Mine(BasePlugin):
        """The user's own plugin, which must keep working."""

        def __init__(self) -> None:
            super().__init__(name="mine")
            self.runs = 0

        async def after_run_callback(self, *, invocation_context: Any) -> None:
            self.runs += 1

    tel: Telemetry = start_telemetry()
    mine = Mine()
    first = adapter.instrument()
    assert adapter.instrument() is first
    scenario.run(scenario.agents(), plugins=[mine])
    first.uninstrument()
    first.uninstrument()  # idempotent
    scenario.run(scenario.agents(), plugins=[mine])
    text = metrics_text(tel)
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1
    assert sample(text, "yolo_llm_calls_total", agent="triage", model="scripted-triage") == 1
    assert mine.runs == 2
    again = adapter.instrument()  # a fresh handle after uninstrument
    try:
        assert again is not first and again.active
    finally:
        again.uninstrument()


def test_a_runner_made_while_instrumented_goes_quiet_on_uninstrument(
        start_telemetry) -> None:
    from google.adk.runners import InMemoryRunner

    tel: Telemetry = start_telemetry()
    handle = adapter.instrument()
    runner = InMemoryRunner(agent=scenario.agents(), app_name="shop")
    assert handle.plugin in runner.plugin_manager.plugins  # type: ignore[attr-defined]
    handle.uninstrument()
    scenario.run(scenario.agents())
    text = metrics_text(tel)
    assert sample(text, "yolo_workflows_total", outcome="completed") == 0


def test_a_failing_adapter_path_is_counted_and_the_run_still_succeeds(
        start_telemetry, instrumented, monkeypatch: pytest.MonkeyPatch) -> None:
    break_adapter_path(monkeypatch, adapter, "_call_key")
    tel: Telemetry = start_telemetry()
    assert scenario.final_text(scenario.story()) == scenario.ANSWER
    # one failure: the one tool completion
    assert_failure_counted(metrics_text(tel), "google_adk", 1, ("triage", "billing"))


def test_no_callback_returns_anything_adk_would_act_on(instrumented) -> None:
    """ADK short-circuits on a plugin callback's return value: ours return None, so
    the run's events are the same with and without the plugin."""
    with_plugin = scenario.run(scenario.agents())
    instrumented.uninstrument()
    bare = scenario.run(scenario.agents())
    assert [(e.author, scenario.final_text([e])) for e in with_plugin] == \
        [(e.author, scenario.final_text([e])) for e in bare]


def test_the_offline_guard_refuses_anything_past_loopback() -> None:
    """conftest.offline is what keeps these tests from reaching google-genai."""
    import socket

    with pytest.raises(AssertionError, match="network call"):
        socket.getaddrinfo("generativelanguage.googleapis.com", 443)
    with socket.socket() as probe, pytest.raises(AssertionError, match="network call"):
        probe.connect(("192.0.2.1", 443))


def test_invocations_that_never_end_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that stops iterating run_async leaves its invocation open for good."""
    from types import SimpleNamespace

    monkeypatch.setattr(adapter, "MAX_OPEN_INVOCATIONS", 3)
    plugin = adapter.TelemetryPlugin()
    for number in range(5):
        plugin._run_began(SimpleNamespace(invocation_id=f"inv-{number}"))
    assert list(plugin._runs) == ["inv-2", "inv-3", "inv-4"]
