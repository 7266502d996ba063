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

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

os.environ["ENABLE_INSTRUMENTATION"] = "false"  # the framework's own spans: not measured
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from agent_framework import (
    AgentMiddleware,
    AgentMiddlewareLayer,
    ChatMiddleware,
    FunctionMiddleware,
)

from benchmarks.harness import interleave, print_adapter_rounds, start_telemetry
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


def empty_middleware() -> tuple[object, object]:
    """Give every run three empty middleware, as instrument() gives ours; (original, patched)."""
    original = AgentMiddlewareLayer.__dict__["run"]
    empty = [EmptyAgent(), EmptyFunction(), EmptyChat()]

    def run_with_empty(self, *args, **kwargs):
        kwargs["middleware"] = [*(kwargs.get("middleware") or ()), *empty]
        return original(self, *args, **kwargs)

    return original, run_with_empty


async def _runs(count: int) -> None:
    for _ in range(count):
        await scenario.workflow().run(scenario.PROMPT)


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
    cpu: dict[str, list[float]] = {"with": [], "without": [], "empty middleware": []}
    original, run_with_empty = empty_middleware()

    def measure(name: str) -> float:
        handle = adapter.instrument() if name == "with" else None
        if name == "empty middleware":
            AgentMiddlewareLayer.run = run_with_empty  # type: ignore[method-assign]
        try:
            wall, thread_cpu = timed(args.runs)
        finally:
            AgentMiddlewareLayer.run = original  # type: ignore[method-assign]
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
    print_adapter_rounds("agent-framework adapter: scripted handoff workflow (3 agent runs, "
                         "4 model calls, 1 tool, 2 handoffs)",
                         wall, cpu,
                         runs=args.runs, rounds=args.rounds, calls_per_run=HOOKS_PER_RUN,
                         call_name="middleware call", events=events)

if __name__ == "__main__":
    main()
