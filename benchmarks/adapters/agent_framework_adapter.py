"""What the Agent Framework adapter costs a scripted run: time with / without it.

    nox -s "adapters(framework='agent_framework')" --install-only   # the framework's venv
    .nox/adapters-framework-agent_framework/bin/python \
        benchmarks/adapters/agent_framework_adapter.py
    ... --rounds 15 --runs 20

One run is the adapter tests' handoff story on scripted chat clients (no LLM, no
network; tests/adapters/agent_framework/scenario.py): a handoff workflow is built and
run, ``triage`` hands off to ``billing``, which calls a tool and hands off to
``refunds``, which answers: 1 workflow, 3 agent runs, 4 model calls, 1 tool call, 2
handoffs. Telemetry is started once (the default metrics pipeline, server on a free
port) and receives in every variant; "with" is instrumented for its measurement only,
and "empty middleware" gives every agent run three middleware (agent, function, chat)
that only call ``call_next()``, the same way (``AgentMiddlewareLayer.run``): what Agent
Framework itself charges for middleware, which the adapter cannot avoid.
Each measurement times ``--runs`` runs in one event loop; the variants alternate in
rounds, the order rotating, the first round discarded (benchmarks/README.md, "Method").
Printed, for wall time and for the CPU time of the running thread: the median of the
per-round ratios with half their interquartile range, and the extra time per
middleware call or workflow event handled (8 middleware calls and 1 workflow per run).
This is a measurement, not a test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

os.environ["ENABLE_INSTRUMENTATION"] = "false"  # the framework's own spans: not measured
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from agent_framework import (
    AgentMiddleware,
    AgentMiddlewareLayer,
    ChatMiddleware,
    FunctionMiddleware,
)

from benchmarks.adapters.rounds import (
    arguments,
    instrumented,
    measure_rounds,
    patched,
    print_rounds,
    timed_runs,
)
from telemetry.adapters import agent_framework as adapter
from tests.adapters.agent_framework import scenario

#: Middleware calls per run: 3 agent runs, 4 model calls, 1 tool call.
HOOKS_PER_RUN = 8


class EmptyAgent(AgentMiddleware):
    async def process(self, context, call_next) -> None:
        await call_next()


class EmptyFunction(FunctionMiddleware):
    async def process(self, context, call_next) -> None:
        await call_next()


class EmptyChat(ChatMiddleware):
    async def process(self, context, call_next) -> None:
        await call_next()


_RUN = AgentMiddlewareLayer.__dict__["run"]
_EMPTY = [EmptyAgent(), EmptyFunction(), EmptyChat()]


def run_with_empty_middleware(self: Any, *args: Any, **kwargs: Any) -> Any:
    """``AgentMiddlewareLayer.run`` giving every agent run three empty middleware, as
    instrument() gives ours."""
    kwargs["middleware"] = [*(kwargs.get("middleware") or ()), *_EMPTY]
    return _RUN(self, *args, **kwargs)


def main() -> None:
    args = arguments(__doc__, runs=20)

    def runs() -> tuple[float, float]:
        return timed_runs(lambda: scenario.workflow().run(scenario.PROMPT), args.runs)

    def with_adapter() -> tuple[float, float]:
        with instrumented(adapter.instrument):
            return runs()

    def with_empty_middleware() -> tuple[float, float]:
        with patched(AgentMiddlewareLayer, "run", run_with_empty_middleware):
            return runs()

    wall, cpu, events = measure_rounds(
        {"with": with_adapter, "without": runs, "empty middleware": with_empty_middleware},
        args.rounds)
    print_rounds("agent-framework adapter: scripted handoff workflow (3 agent runs, "
                 "4 model calls, 1 tool, 2 handoffs)",
                 wall, cpu, runs=args.runs, rounds=args.rounds, calls_per_run=HOOKS_PER_RUN,
                 call_name="middleware call", events=events)


if __name__ == "__main__":
    main()
