"""The snapshot dataclasses answer to the story's field names as well as their own."""

from __future__ import annotations

import pytest

from telemetry import signals
from telemetry.aggregation.aggregator import Aggregator
from telemetry.metrics import AgentMetrics

STORY_NAMES = {
    "handoff_duration_seconds": "handoff_duration",
    "decision_time_seconds": "decision_duration",
    "context_refresh_time_seconds": "context_refresh_duration",
}


@pytest.fixture
def aggregator():
    aggregator = Aggregator()
    aggregator.connect()
    yield aggregator
    aggregator.disconnect()


def test_the_story_names_read_the_duration_summaries(aggregator: Aggregator) -> None:
    signals.handoff_completed.send(None, from_agent="pm", to_agent="dev", duration_s=2.0)
    signals.decision_made.send(None, agent="dev", decision_type="x", duration_s=3.0)
    signals.decision_made.send(None, agent="dev", decision_type="x", duration_s=5.0)
    signals.context_refreshed.send(None, agent="dev", duration_s=0.5)
    agent, _ = aggregator.snapshot()
    assert (agent.handoff_duration_seconds.count, agent.handoff_duration_seconds.sum) == (1, 2.0)
    assert (agent.decision_time_seconds.count, agent.decision_time_seconds.mean) == (2, 4.0)
    assert agent.context_refresh_time_seconds.sum == 0.5
    for story, ours in STORY_NAMES.items():
        assert getattr(agent, story) == getattr(agent, ours)


def test_the_story_names_exist_on_an_empty_snapshot() -> None:
    empty = AgentMetrics()
    for story in STORY_NAMES:
        assert getattr(empty, story).count == 0
