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

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from dataclasses import dataclass

from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

from benchmarks.adapters.rounds import (
    arguments,
    instrumented,
    measure_rounds,
    patched,
    print_rounds,
    timed_runs,
)
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


_ITER = Agent.__dict__["iter"]


def iter_with_empty_capability(self: Agent, *args: Any, **kwargs: Any) -> Any:
    """``Agent.iter`` giving every run an EmptyCapability, as instrument() gives ours."""
    kwargs["capabilities"] = [*(kwargs.get("capabilities") or ()), EmptyCapability()]
    return _ITER(self, *args, **kwargs)


def main() -> None:
    args = arguments(__doc__, runs=20)

    def runs() -> tuple[float, float]:
        return timed_runs(lambda: lead.run("go"), args.runs)

    def with_adapter() -> tuple[float, float]:
        with instrumented(adapter.instrument):
            return runs()

    def with_empty_capability() -> tuple[float, float]:
        with patched(Agent, "iter", iter_with_empty_capability):
            return runs()

    wall, cpu, events = measure_rounds(
        {"with": with_adapter, "without": runs, "empty capability": with_empty_capability},
        args.rounds)
    print_rounds("pydantic-ai adapter: "
                 "scripted run (2 agent runs, 3 model requests, 1 tool, 1 delegation)",
                 wall, cpu, runs=args.runs, rounds=args.rounds, calls_per_run=HOOKS_PER_RUN,
                 call_name="hook call", events=events)


if __name__ == "__main__":
    main()
