"""The adapter never breaks the application: its failures are counted, logged once and
swallowed, and the graph's result is the same as without it."""

from __future__ import annotations

import logging
from collections.abc import Callable

import blinker
from langgraph.checkpoint.memory import InMemorySaver

from telemetry import Telemetry
from telemetry.adapters import graph_runs
from telemetry.adapters import langgraph as adapter
from tests.adapters.langgraph.graphs import loop_graph, loop_input
from tests.support.faults import get_text


def dropped(tel: Telemetry) -> float:
    for line in get_text(f"{tel.url}/metrics").splitlines():
        if line.startswith("yolo_telemetry_dropped_total{") and \
                'component="adapter_langgraph"' in line and 'reason="exception"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_failing_callback_is_counted_and_the_run_succeeds(
        instrumented, start_telemetry: Callable[..., Telemetry], caplog, monkeypatch) -> None:
    tel = start_telemetry()
    expected = loop_graph(rounds=2).invoke(loop_input())

    def broken(*args, **kwargs):
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(instrumented.handler.tracker, "chain_start", broken)
    with caplog.at_level(logging.ERROR, logger="telemetry.adapters"):
        result = loop_graph(rounds=2).invoke(loop_input())
    assert result["rounds"] == expected["rounds"] == 2
    assert len(result["messages"]) == len(expected["messages"])
    failures = instrumented.emitter.failures
    assert failures >= 7  # the graph run and every node and call in it
    assert dropped(tel) == failures
    logged = [r for r in caplog.records if "failed in" in r.getMessage()]
    assert len(logged) == 1  # once per callback, then only counted


def test_a_failing_receiver_never_reaches_the_graph(instrumented) -> None:
    def receiver(sender, **fields):
        raise ValueError("a receiver that fails")

    signal = blinker.signal("yolo.agent_activated")
    signal.connect(receiver)
    try:
        assert loop_graph(rounds=1).invoke(loop_input())["rounds"] == 1
    finally:
        signal.disconnect(receiver)
    assert instrumented.emitter.failures == 3  # one per node run


def test_a_failing_checkpoint_record_still_saves(recorder, monkeypatch) -> None:
    def broken(saver, checkpoint):
        raise TypeError("cannot size")

    monkeypatch.setattr(adapter, "checkpoint_size", broken)
    saver = InMemorySaver()
    with adapter.instrument(checkpointers=[saver]) as handle:
        config = {"configurable": {"thread_id": "t"}}
        loop_graph(rounds=1, checkpointer=saver).invoke(loop_input(), config)
        saved = len(list(saver.list(config)))
        assert saved > 0 and handle.emitter.failures == saved
    assert recorder.named("state_saved") == []
    assert saver.get_tuple(config).checkpoint["channel_values"]["rounds"] == 1


def test_runs_past_the_cap_are_not_followed(instrumented, recorder, monkeypatch) -> None:
    monkeypatch.setattr(graph_runs, "MAX_RUNS", 2)  # the root and one node
    assert loop_graph(rounds=1).invoke(loop_input())["rounds"] == 1
    assert len(recorder.named("workflow_started")) == 1
    assert len(recorder.named("workflow_completed")) == 1
    assert instrumented.handler.tracker.runs == {}
    assert instrumented.emitter.failures == 0
