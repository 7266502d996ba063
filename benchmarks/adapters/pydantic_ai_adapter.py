"""What the Pydantic AI adapter costs a scripted run: time with / without it.

    nox -s "adapters(framework='pydantic_ai')" --install-only    # the framework's venv
    .nox/adapters-framework-pydantic_ai/bin/python benchmarks/adapters/pydantic_ai_adapter.py
    ... --rounds 15 --runs 20

One run is the adapter tests' story on the framework's test models (no LLM, no
network): ``lead`` (a ``FunctionModel``) calls a tool that runs ``researcher`` (a
``TestModel``), then answers: 2 agent runs, 3 model requests, 1 tool call, 1
delegation. Telemetry is started once (the default metrics pipeline, server on a free
port) and receives in every variant; "with" is instrumented for its measurement only,
and "empty capability" gives every run a capability that does nothing, the same way
(``Agent.iter(capabilities=...)``): what Pydantic AI itself charges for a run capability,
which the adapter cannot avoid.
Each measurement times ``--runs`` runs in one event loop; the variants alternate in
rounds, the order rotating, the first round discarded (benchmarks/README.md, "Method").
Printed, for wall time and for the CPU time of the running thread: the median of the
per-round ratios with half their interquartile range, and the extra time per hook
call (the capability's wrap_run, wrap_model_request and wrap_tool_execute).
This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from dataclasses import dataclass

from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

from benchmarks.harness import interleave, print_adapter_rounds, start_telemetry
from telemetry.adapters import pydantic_ai as adapter

#: Hook calls per run: 2 runs, 3 model requests, 1 tool execution.
HOOKS_PER_RUN = 6


def lead_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if len(messages) == 1:
        return ModelResponse(parts=[ToolCallPart("ask_researcher", {"question": "q"})],
                             usage=RequestUsage(input_tokens=40, output_tokens=8))
    return ModelResponse(parts=[TextPart("done")],
                         usage=RequestUsage(input_tokens=60, output_tokens=4))


researcher = Agent(TestModel(custom_output_text="found"), name="researcher")
lead = Agent(FunctionModel(lead_model), name="lead")


@lead.tool
async def ask_researcher(ctx: RunContext[None], question: str) -> str:
    return (await researcher.run(question, usage=ctx.usage)).output


@dataclass
class EmptyCapability(AbstractCapability):
    """A run capability with no hooks of its own."""

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None


def empty_capability() -> tuple[object, object]:
    """Give every run an EmptyCapability, as instrument() gives ours; (original, patched)."""
    original = Agent.__dict__["iter"]

    def iter_with_empty(self: Agent, *args, **kwargs):
        kwargs["capabilities"] = [*(kwargs.get("capabilities") or ()), EmptyCapability()]
        return original(self, *args, **kwargs)

    return original, iter_with_empty


async def _runs(count: int) -> None:
    for _ in range(count):
        await lead.run("go")


def timed(count: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    asyncio.run(_runs(count))
    return time.perf_counter() - wall, time.thread_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=20, help="runs per measurement")
    args = parser.parse_args()

    telemetry = start_telemetry({"server": {"port": 0}})
    events_before = telemetry.snapshot()[1].events_total
    cpu: dict[str, list[float]] = {"with": [], "without": [], "empty capability": []}
    original, iter_with_empty = empty_capability()

    def measure(name: str) -> float:
        handle = adapter.instrument() if name == "with" else None
        if name == "empty capability":
            Agent.iter = iter_with_empty  # type: ignore[method-assign]
        try:
            wall, thread_cpu = timed(args.runs)
        finally:
            Agent.iter = original  # type: ignore[method-assign]
            if handle is not None:
                handle.uninstrument()
        cpu[name].append(thread_cpu)
        return wall

    try:
        wall = interleave({name: (lambda name=name: measure(name)) for name in cpu},
                          rounds=args.rounds)
        events = telemetry.snapshot()[1].events_total - events_before
    finally:
        telemetry.stop()
    print_adapter_rounds("pydantic-ai adapter: "
                         "scripted run (2 agent runs, 3 model requests, 1 tool, 1 delegation)",
                         wall, cpu,
                         runs=args.runs, rounds=args.rounds, calls_per_run=HOOKS_PER_RUN,
                         call_name="hook call", events=events)

if __name__ == "__main__":
    main()
