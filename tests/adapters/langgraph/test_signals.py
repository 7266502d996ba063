"""Which signals a LangGraph run sends: nodes, handoffs, loops, LLM and tool calls,
interrupts and resumes, checkpoints and errors (recorded at blinker, the contract)."""

from __future__ import annotations

import asyncio
import contextlib
import operator
from typing import Annotated, TypedDict

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from telemetry.adapters import call_key
from telemetry.adapters import langgraph as adapter
from tests.adapters.langgraph.graphs import (
    ANSWER_TURN,
    TOOL_INPUT,
    TOOL_TURN,
    loop_graph,
    loop_input,
    react_graph,
)
from tests.adapters.support import Recorder

LOOP_AGENTS = ["planner", "researcher", "reviewer"]


def handoffs(recorder: Recorder) -> list[tuple[str, str]]:
    return [(f["from_agent"], f["to_agent"]) for f in recorder.named("handoff_completed")]


def test_nodes_are_agents_and_successive_nodes_hand_off(instrumented, recorder):
    loop_graph(rounds=3).invoke(loop_input())

    activated = [f["agent"] for f in recorder.named("agent_activated")]
    assert activated == LOOP_AGENTS * 3
    assert [f["agent"] for f in recorder.named("agent_deactivated")] == activated
    assert handoffs(recorder) == [("planner", "researcher"), ("researcher", "reviewer"),
                                  ("reviewer", "planner")] * 2 + [
                                 ("planner", "researcher"), ("researcher", "reviewer")]
    (started,) = recorder.named("workflow_started")
    (completed,) = recorder.named("workflow_completed")
    assert started["workflow_type"] == "LangGraph"
    workflow = started["workflow_id"]
    assert completed["workflow_id"] == workflow and completed["duration_s"] > 0
    every = [f for name, f in recorder.events if name != "workflow_started"]
    assert all(f.get("workflow_id") == workflow for f in every)
    assert all(f["duration_s"] >= 0 for f in recorder.named("handoff_completed"))


def test_llm_calls_carry_the_agent_model_and_tokens(instrumented, recorder):
    loop_graph(rounds=2).invoke(loop_input())

    calls = recorder.named("llm_called")
    assert [c["agent"] for c in calls] == ["researcher", "researcher"]
    assert {c["model"] for c in calls} == {"GenericFakeChatModel"}
    assert {c["provider"] for c in calls} == {"genericfakechatmodel"}
    assert [(c["input_tokens"], c["output_tokens"]) for c in calls] == [
        TOOL_TURN[:2], ANSWER_TURN[:2]]
    assert calls[0]["cached_input_tokens"] == TOOL_TURN[2]
    assert "cached_input_tokens" not in calls[1]
    assert all(c["duration_s"] >= 0 and "error_type" not in c for c in calls)


def test_tool_calls_carry_a_hash_of_the_input_never_the_input(instrumented, recorder):
    loop_graph(rounds=1).invoke(loop_input())

    (started,) = recorder.named("tool_started")
    (completed,) = recorder.named("tool_completed")
    assert (started["agent"], started["tool"]) == ("researcher", "lookup")
    assert (completed["agent"], completed["tool"]) == ("researcher", "lookup")
    key = call_key(str({"query": TOOL_INPUT}))
    assert started["call_key"] == completed["call_key"] == key
    assert TOOL_INPUT not in repr(recorder.events)
    assert completed["duration_s"] >= 0 and "error_type" not in completed


def test_a_failing_tool_is_a_tool_error(instrumented, recorder):
    from langchain_core.tools import tool

    @tool
    def broken(query: str) -> str:
        """Always fails."""
        raise ValueError(f"cannot look up {query}")

    def caller(state: dict) -> dict:
        with contextlib.suppress(ValueError):
            broken.invoke({"query": TOOL_INPUT})
        return {}

    builder = StateGraph(dict)
    builder.add_node("caller", caller)
    builder.add_edge(START, "caller")
    builder.compile().invoke({})
    (completed,) = recorder.named("tool_completed")
    assert completed["error_type"] == "ValueError" and completed["tool"] == "broken"
    assert TOOL_INPUT not in repr(recorder.events)


def test_interrupt_pauses_and_resume_continues(instrumented, recorder):
    graph = loop_graph(rounds=2, interrupt_last=True, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "review-1"}}

    graph.invoke(loop_input(), config)
    assert [f["mode"] for f in recorder.named("mode_changed")] == ["paused"]
    assert recorder.names()[-1] == "mode_changed"  # after the run ended, not before
    assert graph.get_state(config).next == ("reviewer",)
    first_runs = len(recorder.named("workflow_completed"))

    graph.invoke(Command(resume="yes"), config)
    assert [f["mode"] for f in recorder.named("mode_changed")] == ["paused", "active"]
    assert len(recorder.named("workflow_completed")) == first_runs + 1
    assert graph.get_state(config).values["approved"] == "yes"
    assert recorder.named("agent_activated")[-1]["agent"] == "reviewer"
    assert not recorder.named("error_occurred") and not recorder.named("workflow_failed")


def test_static_breakpoints_pause_through_langgraph_graph_callbacks(recorder):
    """LangGraph's own interrupt event reaches the handler passed in config callbacks
    (LangGraph 1.1.8 on; before, a static breakpoint raises nothing the adapter sees)."""
    with adapter.instrument() as handle:
        graph = loop_graph(rounds=1)
        graph = graph.builder.compile(checkpointer=InMemorySaver(),
                                      interrupt_before=["reviewer"])
        config = {"configurable": {"thread_id": "bp-1"}, "callbacks": [handle.handler]}
        graph.invoke(loop_input(), config)
        paused = ["paused"] if adapter.GRAPH_CALLBACKS else []
        assert [f["mode"] for f in recorder.named("mode_changed")] == paused
        graph.invoke(None, config)
        resumed = ["paused", "active"] if adapter.GRAPH_CALLBACKS else []
        assert [f["mode"] for f in recorder.named("mode_changed")] == resumed
        assert len(recorder.named("workflow_started")) == 2  # the handler is added once


def test_checkpoints_of_a_watched_saver_are_state_saves(recorder):
    saver = InMemorySaver()
    with adapter.instrument(checkpointers=[saver]):
        loop_graph(rounds=1, checkpointer=saver).invoke(
            loop_input(), {"configurable": {"thread_id": "saves"}})
        saves = recorder.named("state_saved")
        assert len(saves) == len(list(saver.list({"configurable": {"thread_id": "saves"}})))
        assert all(s["size_bytes"] > 0 and s["duration_s"] >= 0 for s in saves)
    assert "put" not in vars(saver) and "aput" not in vars(saver)


def test_async_checkpoints_count_once(recorder):
    saver = InMemorySaver()  # its aput calls put: one save, not two
    with adapter.instrument(checkpointers=[saver]):
        config = {"configurable": {"thread_id": "async-saves"}}
        asyncio.run(loop_graph(rounds=1, checkpointer=saver).ainvoke(loop_input(), config))
        saves = recorder.named("state_saved")
        assert len(saves) == len(list(saver.list(config))) > 0


def test_recursion_limit_is_an_error_of_the_last_agent(instrumented, recorder):
    builder = StateGraph(dict)
    builder.add_node("spinner", lambda state: {})
    builder.add_node("other", lambda state: {})
    builder.add_edge(START, "spinner")
    builder.add_edge("spinner", "other")
    builder.add_edge("other", "spinner")
    with pytest.raises(GraphRecursionError):
        builder.compile().invoke({}, {"recursion_limit": 4})

    (error,) = recorder.named("error_occurred")
    assert error["error_type"] == "GraphRecursionError" and error["agent"] == "other"
    (failed,) = recorder.named("workflow_failed")
    assert failed["error_type"] == "GraphRecursionError"
    assert not recorder.named("workflow_completed")


def test_a_failing_node_is_its_agents_error_once(instrumented, recorder):
    def broken(state: dict) -> dict:
        raise KeyError("missing")

    builder = StateGraph(dict)
    builder.add_node("broken", broken)
    builder.add_edge(START, "broken")
    with pytest.raises(KeyError):
        builder.compile().invoke({})
    assert [(f["agent"], f["error_type"]) for f in recorder.named("error_occurred")] == [
        ("broken", "KeyError")]
    assert recorder.named("workflow_failed")[0]["error_type"] == "KeyError"
    assert recorder.named("agent_deactivated")[0]["agent"] == "broken"


def test_command_goto_hands_off(instrumented, recorder):
    builder = StateGraph(dict)
    builder.add_node("triage", lambda state: Command(goto="billing"))
    builder.add_node("billing", lambda state: {})
    builder.add_node("support", lambda state: {})
    builder.add_edge(START, "triage")
    builder.add_edge("billing", END)
    builder.add_edge("support", END)
    builder.compile().invoke({})
    assert handoffs(recorder) == [("triage", "billing")]


def test_parallel_branches_hand_off_from_the_node_before(instrumented, recorder):
    class Trail(TypedDict):
        seen: Annotated[list[str], operator.add]

    builder = StateGraph(Trail)
    for name in ("split", "left", "right", "join"):
        builder.add_node(name, lambda state, name=name: {"seen": [name]})
    builder.add_edge(START, "split")
    builder.add_edge("split", "left")
    builder.add_edge("split", "right")
    builder.add_edge(["left", "right"], "join")
    builder.compile().invoke({"seen": []})
    pairs = handoffs(recorder)
    assert sorted(pairs[:2]) == [("split", "left"), ("split", "right")]
    assert len(pairs) == 3 and pairs[2][1] == "join" and pairs[2][0] in ("left", "right")


def test_subgraph_nodes_work_for_the_node_that_runs_the_subgraph(instrumented, recorder):
    inner = StateGraph(dict)
    inner.add_node("inner_model", lambda state: {})
    inner.add_edge(START, "inner_model")
    outer = StateGraph(dict)
    outer.add_node("lead", lambda state: {})
    outer.add_node("team", inner.compile())
    outer.add_edge(START, "lead")
    outer.add_edge("lead", "team")
    outer.compile().invoke({})
    assert [f["agent"] for f in recorder.named("agent_activated")] == ["lead", "team"]
    assert len(recorder.named("workflow_started")) == 1


def test_the_tool_node_is_no_agent_and_its_calls_count_for_the_agent(instrumented, recorder):
    react_graph(tool_calls=3).invoke({"messages": [HumanMessage("hello")]})
    assert {f["agent"] for f in recorder.named("agent_activated")} == {"agent"}
    assert handoffs(recorder) == []  # agent -> tools -> agent is one agent at work
    assert [f["agent"] for f in recorder.named("tool_completed")] == ["agent"] * 3
    assert len(recorder.named("llm_called")) == 4


def test_skip_nodes_none_makes_the_tool_node_an_agent(recorder):
    with adapter.instrument(skip_nodes=()):
        react_graph(tool_calls=2).invoke({"messages": [HumanMessage("hello")]})
    assert handoffs(recorder) == [("agent", "tools"), ("tools", "agent")] * 2


def test_async_graphs_send_the_same(instrumented, recorder):
    asyncio.run(loop_graph(rounds=2).ainvoke(loop_input()))
    assert [f["agent"] for f in recorder.named("agent_activated")] == LOOP_AGENTS * 2
    assert len(recorder.named("llm_called")) == 2
    assert len(recorder.named("tool_completed")) == 1


def test_instrument_is_idempotent(recorder):
    first = adapter.instrument()
    try:
        assert adapter.instrument() is first
        loop_graph(rounds=1).invoke(loop_input())
        assert len(recorder.named("agent_activated")) == 3
    finally:
        first.uninstrument()
    assert not first.active


def test_uninstrument_stops_the_signals_and_keeps_the_users_callbacks(recorder):
    class Counting(BaseCallbackHandler):
        starts = 0

        def on_chain_start(self, *args, **kwargs):
            Counting.starts += 1

    handle = adapter.instrument()
    handle.uninstrument()
    handle.uninstrument()  # idempotent
    loop_graph(rounds=1).invoke(loop_input(), {"callbacks": [Counting()]})
    assert recorder.events == []
    assert Counting.starts > 0
    # a handler the user kept a reference to goes quiet too
    loop_graph(rounds=1).invoke(loop_input(), {"callbacks": [handle.handler]})
    assert recorder.events == []
    # and instrumenting again works
    with adapter.instrument() as again:
        assert again is not handle
        loop_graph(rounds=1).invoke(loop_input())
    assert len(recorder.named("workflow_started")) == 1


def test_calls_inside_a_retriever_count_for_the_node(instrumented, recorder):
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from tests.adapters.langgraph.graphs import fake_model

    model = fake_model(0)

    class Rewriting(BaseRetriever):
        """Asks the model to rewrite the query before searching."""

        def _get_relevant_documents(self, query, *, run_manager):
            rewritten = model.invoke([HumanMessage(query)], {"callbacks": run_manager.get_child()})
            return [Document(page_content=str(rewritten.content))]

    def search(state: dict) -> dict:
        Rewriting().invoke(TOOL_INPUT)
        return {}

    builder = StateGraph(dict)
    builder.add_node("search", search)
    builder.add_edge(START, "search")
    builder.compile().invoke({})
    assert [c["agent"] for c in recorder.named("llm_called")] == ["search"]
    assert instrumented.handler.tracker.runs == {}


def test_langchain_runs_outside_a_graph_are_not_reported(instrumented, recorder):
    from tests.adapters.langgraph.graphs import fake_model

    fake_model(0).invoke([HumanMessage("hello")])
    assert recorder.events == []


def test_concurrent_graph_runs_stay_apart(instrumented, recorder):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: loop_graph(rounds=3).invoke(loop_input()), range(8)))
    assert [r["rounds"] for r in results] == [3] * 8
    workflows = {f["workflow_id"] for f in recorder.named("workflow_started")}
    assert len(workflows) == 8
    for workflow in workflows:  # each run's handoffs are its own, in its own order
        pairs = [(f["from_agent"], f["to_agent"]) for f in recorder.named("handoff_completed")
                 if f["workflow_id"] == workflow]
        assert pairs == [("planner", "researcher"), ("researcher", "reviewer"),
                         ("reviewer", "planner")] * 2 + [
                        ("planner", "researcher"), ("researcher", "reviewer")]
    assert len(recorder.named("agent_deactivated")) == len(recorder.named("agent_activated"))
    tracker = instrumented.handler.tracker
    assert tracker.runs == {} and tracker.graphs == {} and tracker.roots == {}
