"""The CrewAI adapter's bookkeeping, on event sequences a real crew cannot make
offline: A2A delegations to a remote agent, flows waiting for a human, checkpoint
restores, two crews at once, and the caps."""

from __future__ import annotations

from typing import Any

from telemetry.adapters import crew_runs as cr
from telemetry.adapters.crew_runs import CrewTracker, Event


def tracker() -> tuple[CrewTracker, list[tuple[str, dict[str, Any]]]]:
    sent: list[tuple[str, dict[str, Any]]] = []
    return CrewTracker(lambda name, **fields: sent.append((name[5:], fields))), sent


def kickoff(t: CrewTracker, run_id: str, ts: float = 0.0) -> None:
    t.handle(Event(cr.KICKOFF_STARTED, ts, run_id, name="crew"))


def names(sent: list) -> list[str]:
    return [name for name, _ in sent]


def test_an_a2a_delegation_is_a_handoff_to_the_remote_agent():
    t, sent = tracker()
    kickoff(t, "k")
    t.handle(Event(cr.AGENT_STARTED, 1.0, "a", "k", agent="lead"))
    t.handle(Event(cr.A2A_STARTED, 2.0, "d1", "a", agent="lead", remote="Research Agent"))
    t.handle(Event(cr.A2A_COMPLETED, 3.5, "d1e", "a", "d1", error_type=None))
    t.handle(Event(cr.A2A_STARTED, 4.0, "d2", "a", agent=None, remote="Research Agent"))
    t.handle(Event(cr.A2A_COMPLETED, 4.5, "d2e", "a", "d2",
                   error_type="a2a_delegation_completed_failed"))
    handoffs = [(f["from_agent"], f["to_agent"], f["duration_s"])
                for name, f in sent if name == "handoff_completed"]
    assert handoffs == [("lead", "Research Agent", 1.5), ("lead", "Research Agent", 0.5)]
    assert [f for name, f in sent if name == "error_occurred"] == [
        {"agent": "lead", "error_type": "a2a_delegation_completed_failed",
         "timestamp": 4.5, "workflow_id": "k"}]


def test_a_flow_waiting_for_a_human_is_the_paused_mode():
    t, sent = tracker()
    t.handle(Event(cr.RESUMED, 0.0, "f"))           # nothing paused yet: nothing sent
    t.handle(Event(cr.PAUSED, 1.0, "p"))
    t.handle(Event(cr.PAUSED, 1.5, "p2"))
    t.handle(Event(cr.RESUMED, 2.0, "r"))
    t.handle(Event(cr.RESUMED, 3.0, "r2"))
    assert [f["mode"] for name, f in sent] == ["paused", "paused", "active"]


def test_checkpoint_saves_and_restores_are_state_signals():
    t, sent = tracker()
    t.handle(Event(cr.STATE_LOADED, 1.0, "l", duration_s=0.25))
    t.handle(Event(cr.STATE_SAVED, 2.0, "s", duration_s=0.5))
    assert sent == [("state_loaded", {"duration_s": 0.25, "size_bytes": 0, "timestamp": 1.0}),
                    ("state_saved", {"duration_s": 0.5, "size_bytes": 0, "timestamp": 2.0})]


def test_two_crews_at_once_keep_their_own_agents_and_handoffs():
    t, sent = tracker()
    kickoff(t, "k1")
    kickoff(t, "k2", 0.1)
    t.handle(Event(cr.AGENT_STARTED, 1.0, "a1", "k1", agent="pm"))
    t.handle(Event(cr.AGENT_STARTED, 1.1, "b1", "k2", agent="qa"))
    t.handle(Event(cr.AGENT_COMPLETED, 2.0, "a1e", "k1", "a1", agent="pm"))
    t.handle(Event(cr.AGENT_STARTED, 2.5, "a2", "k1", agent="dev"))
    t.handle(Event(cr.AGENT_COMPLETED, 3.0, "a2e", "k1", "a2", agent="dev"))
    t.handle(Event(cr.KICKOFF_FAILED, 4.0, "k2e", None, "k2", error_type="crew_kickoff_failed"))
    t.handle(Event(cr.KICKOFF_COMPLETED, 5.0, "k1e", None, "k1"))
    handoffs = [(f["from_agent"], f["to_agent"], f["workflow_id"])
                for name, f in sent if name == "handoff_completed"]
    assert handoffs == [("pm", "dev", "k1")]
    # the failed crew's working agent is deactivated with it
    assert ("agent_deactivated", {"agent": "qa", "timestamp": 4.0, "workflow_id": "k2"}) in sent
    assert names(sent)[-2:] == ["workflow_failed", "workflow_completed"]
    assert t.runs == {} and t.scopes == {}


def test_an_event_in_a_scope_not_followed_counts_for_the_only_open_run():
    t, sent = tracker()
    kickoff(t, "k")
    t.handle(Event(cr.LLM_STARTED, 1.0, "l", "memory-scope", agent="pm", model="m"))
    t.handle(Event(cr.LLM_COMPLETED, 2.0, "le", "memory-scope", "l", agent="pm", model="m",
                   input_tokens=3, output_tokens=4))
    (call,) = [f for name, f in sent if name == "llm_called"]
    assert call["workflow_id"] == "k" and call["duration_s"] == 1.0


def test_scopes_and_runs_are_capped(monkeypatch):
    monkeypatch.setattr(cr, "MAX_SCOPES", 3)
    monkeypatch.setattr(cr, "MAX_RUNS", 1)
    t, sent = tracker()
    kickoff(t, "k")
    kickoff(t, "k-too-many")
    for i in range(10):
        t.handle(Event(cr.TOOL_STARTED, float(i), f"t{i}", "k", agent="dev", tool="x",
                       call_key=None))
    assert len(t.runs) == 1 and len(t.scopes) == 3
    assert names(sent).count("workflow_started") == 1
    assert names(sent).count("tool_started") == 10
