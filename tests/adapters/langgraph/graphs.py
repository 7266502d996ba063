"""The graphs the LangGraph adapter tests run, with the framework's own test model.

``loop_graph``: planner -> researcher -> reviewer, and a conditional edge from the
reviewer back to the planner until ``rounds`` rounds are done (a handoff loop the
loop metric and HandoffLoop must see). The researcher asks the fake chat model, which
asks for the ``lookup`` tool in the first round; with ``interrupt=True`` the reviewer
waits on a human (``interrupt()``) in the last round. ``react_graph``: the prebuilt
tool node between two model turns. No network, no API key.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import interrupt

#: Text that must never leave the process: the prompt, the tool's input and output.
PROMPT = "SECRET-PROMPT-4711"
TOOL_INPUT = "SECRET-QUERY-0815"
TOOL_OUTPUT = "SECRET-ANSWER-2342"
SECRETS = (PROMPT, TOOL_INPUT, TOOL_OUTPUT)

#: Tokens each model turn reports (input, output, cached input).
TOOL_TURN = (10, 5, 4)
ANSWER_TURN = (12, 3, 0)


@tool
def lookup(query: str) -> str:
    """Look a query up."""
    return f"{TOOL_OUTPUT} for {query}"


def _usage(turn: tuple[int, int, int]) -> dict[str, Any]:
    inputs, outputs, cached = turn
    usage: dict[str, Any] = {"input_tokens": inputs, "output_tokens": outputs,
                             "total_tokens": inputs + outputs}
    if cached:
        usage["input_token_details"] = {"cache_read": cached}
    return usage


def scripted_turns(tool_calls: int = 1, answers: int = 20) -> Iterator[AIMessage]:
    """The fake model's replies: ``tool_calls`` turns asking for ``lookup``, then answers."""
    for number in range(tool_calls):
        yield AIMessage(content="", usage_metadata=_usage(TOOL_TURN), tool_calls=[
            {"name": "lookup", "args": {"query": TOOL_INPUT}, "id": f"call-{number}"}])
    for _ in range(answers):
        yield AIMessage(content=f"the answer is {TOOL_OUTPUT}", usage_metadata=_usage(ANSWER_TURN))


def fake_model(tool_calls: int = 1) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=scripted_turns(tool_calls))


class LoopState(TypedDict):
    messages: Annotated[list[AnyMessage], operator.add]
    rounds: int
    approved: str


def loop_graph(rounds: int = 3, *, interrupt_last: bool = False, checkpointer: Any = None,
               model: GenericFakeChatModel | None = None) -> Any:
    """planner -> researcher -> reviewer, back to planner until ``rounds`` are done."""
    model = model or fake_model()

    def planner(state: LoopState) -> dict:
        return {"rounds": state.get("rounds", 0) + 1}

    def researcher(state: LoopState) -> dict:
        reply = model.invoke(state["messages"])
        found = [lookup.invoke(call) for call in reply.tool_calls]
        return {"messages": [reply, *found]}

    def reviewer(state: LoopState) -> dict:
        if interrupt_last and state["rounds"] == rounds:
            return {"approved": interrupt("approve the answer?")}
        return {}

    def next_step(state: LoopState) -> str:
        return "planner" if state["rounds"] < rounds else END

    builder = StateGraph(LoopState)
    builder.add_node("planner", planner)
    builder.add_node("researcher", researcher)
    builder.add_node("reviewer", reviewer)
    builder.add_edge(START, "planner")
    builder.add_edge("planner", "researcher")
    builder.add_edge("researcher", "reviewer")
    builder.add_conditional_edges("reviewer", next_step, ["planner", END])
    return builder.compile(checkpointer=checkpointer)


def loop_input() -> dict:
    return {"messages": [HumanMessage(PROMPT)], "rounds": 0, "approved": ""}


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], operator.add]


def react_graph(tool_calls: int = 3) -> Any:
    """An agent node and the prebuilt tool node ``tools``, looping until the model answers."""
    model = fake_model(tool_calls)

    def agent(state: ChatState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(ChatState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([lookup]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile()
