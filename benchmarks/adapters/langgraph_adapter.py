"""What the LangGraph adapter costs a graph run:
``python benchmarks/adapters/langgraph_adapter.py [--quick]`` in the langgraph venv
(``nox -s "adapters(framework='langgraph')"`` makes one: ``.nox/adapters-framework-langgraph``).

A scripted run: the three-node loop of the adapter tests (planner -> researcher ->
reviewer, back to the planner for five rounds), the researcher asking langchain's fake
chat model and calling a tool in the first round. Each variant runs it ``RUNS`` times:

* ``bare``: telemetry running (Prometheus), the adapter not instrumented;
* ``adapter``: the same, instrumented: every node, handoff, LLM and tool call sent;
* ``noop``: a callback handler that does nothing, in ``config["callbacks"]``: what
  langchain's callback dispatch costs by itself, whoever listens;
* the same three with an in-memory checkpointer, watched by the adapter (state saves,
  each checkpoint sized by serializing it once more).

Variants run in interleaved rounds (benchmarks/README.md, "Method"): the figure is the
median of the per-round ratios adapter / bare (and noop / bare), ``±`` half their
interquartile range.
The fake model answers at once, so LangGraph's own work is all there is to compare
with: a real model call (hundreds of milliseconds) makes the ratio far smaller. The
cost per framework event is (adapter - bare) / the signals one run sends.
"""

from __future__ import annotations

import argparse
import operator
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import blinker
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from benchmarks.harness import interleave, median, paired_ratios, spread
from telemetry import Telemetry, load_config
from telemetry.adapters import langgraph as adapter
from telemetry.signals import CONTRACT

ROUNDS_PER_RUN = 5
USAGE = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}


@tool
def lookup(query: str) -> str:
    """Look a query up."""
    return f"found {query}"


def replies() -> Iterator[AIMessage]:
    yield AIMessage("", usage_metadata=USAGE,
                    tool_calls=[{"name": "lookup", "args": {"query": "otters"}, "id": "c1"}])
    while True:
        yield AIMessage("an answer", usage_metadata=USAGE)


class State(TypedDict):
    messages: Annotated[list[AnyMessage], operator.add]
    rounds: int


def build(checkpointer: Any = None) -> Any:
    model = GenericFakeChatModel(messages=replies())

    def planner(state: State) -> dict:
        return {"rounds": state["rounds"] + 1}

    def researcher(state: State) -> dict:
        reply = model.invoke(state["messages"][-2:])
        return {"messages": [reply, *(lookup.invoke(call) for call in reply.tool_calls)]}

    builder = StateGraph(State)
    builder.add_node("planner", planner)
    builder.add_node("researcher", researcher)
    builder.add_node("reviewer", lambda state: {})
    builder.add_edge(START, "planner")
    builder.add_edge("planner", "researcher")
    builder.add_edge("researcher", "reviewer")
    builder.add_conditional_edges(
        "reviewer", lambda s: "planner" if s["rounds"] < ROUNDS_PER_RUN else END,
        ["planner", END])
    return builder.compile(checkpointer=checkpointer)


class NoopHandler(BaseCallbackHandler):
    run_inline = True


def variant(checkpointed: bool, instrumented: bool, runs: int,
            noop: bool = False) -> Callable[[], float]:
    """Seconds for ``runs`` scripted graph runs, instrumented or not."""
    saver = InMemorySaver() if checkpointed else None
    graph = build(saver)
    counter = [0]
    callbacks = [NoopHandler()] if noop else []

    def measure() -> float:
        handle = adapter.instrument(checkpointers=[saver] if saver else ()) \
            if instrumented else None
        try:
            started = time.perf_counter()
            for _ in range(runs):
                counter[0] += 1
                config: dict = {"callbacks": callbacks}
                if saver:
                    config["configurable"] = {"thread_id": f"t{counter[0]}"}
                graph.invoke({"messages": [HumanMessage("hello")], "rounds": 0}, config)
            return time.perf_counter() - started
        finally:
            if handle is not None:
                handle.uninstrument()
    return measure


def signals_per_run(checkpointed: bool) -> int:
    """How many signals one instrumented run sends (the framework events it maps)."""
    seen = [0]

    def count(sender: Any, **fields: Any) -> None:
        seen[0] += 1

    for spec in CONTRACT:
        blinker.signal(spec.name).connect(count)
    try:
        variant(checkpointed, True, 1)()
    finally:
        for spec in CONTRACT:
            blinker.signal(spec.name).disconnect(count)
    return seen[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds: proves it runs")
    args = parser.parse_args()
    rounds, runs = (5, 5) if args.quick else (31, 20)
    tel = Telemetry(load_config({"server": {"port": 0}}, environ={})).start()
    try:
        print(f"LangGraph adapter overhead: {rounds} rounds of {runs} runs each, "
              f"{ROUNDS_PER_RUN} loop rounds per run")
        print(f"{'scenario':<14} {'signals/run':>11} {'bare ms/run':>12} "
              f"{'noop/bare':>16} {'adapter/bare':>16} {'us/signal':>10}")
        for checkpointed in (False, True):
            name = "checkpointed" if checkpointed else "plain"
            samples = interleave({"bare": variant(checkpointed, False, runs),
                                  "noop": variant(checkpointed, False, runs, noop=True),
                                  "adapter": variant(checkpointed, True, runs)}, rounds)
            ratios = paired_ratios(samples, "adapter", "bare")
            noop = paired_ratios(samples, "noop", "bare")
            events = signals_per_run(checkpointed)
            extra = [(a - b) / runs / events * 1e6
                     for a, b in zip(samples["adapter"], samples["bare"], strict=True)]
            bare_ms = median(samples["bare"]) / runs * 1e3
            print(f"{name:<14} {events:>11} {bare_ms:>12.2f} "
                  f"{median(noop):>9.3f} ±{spread(noop):.3f} "
                  f"{median(ratios):>9.3f} ±{spread(ratios):.3f} {median(extra):>10.1f}")
    finally:
        tel.stop()


if __name__ == "__main__":
    main()
