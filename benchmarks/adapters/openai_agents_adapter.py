"""What the OpenAI Agents SDK adapter costs a scripted run: time with / without it.

    nox -s "adapters(framework='openai_agents')" --install-only    # the framework's venv
    .nox/adapters-framework-openai_agents/bin/python benchmarks/adapters/openai_agents_adapter.py
    ... --rounds 15 --runs 20

One run is the adapter tests' story: ``triage`` hands off to ``weather``, which calls
a tool and answers, on ``agents.testing.ScriptedModel`` (no LLM, no network): 3 model
calls, 1 tool call, 1 handoff, about a dozen SDK spans. Telemetry is started once
(the default metrics pipeline, server on a free port) and receives in both variants;
"with" registers the adapter's processor for its measurement only, "without" runs
the same story with no processor registered, so the SDK makes the same spans and
nobody reads them. Each measurement times ``--runs`` runs in one event loop; the
variants alternate in rounds, the order rotating, the first round discarded
(benchmarks/README.md, "Method"). Printed: the median of the per-round ratios with
half their interquartile range, and the extra time per SDK span the processor saw.
This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from agents import Agent, Runner, function_tool
from agents.testing import (
    ModelStep,
    ScriptedModel,
    assistant_message,
    function_call,
)
from agents.tracing import (
    TracingProcessor,
    get_trace_provider,
    set_trace_processors,
)
from agents.usage import Usage

from benchmarks.harness import interleave, median, spread, start_telemetry
from telemetry.adapters import openai_agents


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


def _usage(input_tokens: int, output_tokens: int) -> Usage:
    return Usage(requests=1, input_tokens=input_tokens, output_tokens=output_tokens,
                 total_tokens=input_tokens + output_tokens)


def story() -> Agent:
    """Fresh agents for one run (a scripted model is consumed by its run)."""
    weather = Agent(name="weather", tools=[get_weather], model=ScriptedModel([
        ModelStep(output=[function_call("get_weather", {"city": "Paris"}, call_id="c1")],
                  usage=_usage(50, 10)),
        ModelStep(output=[assistant_message("Sunny.")], usage=_usage(70, 5)),
    ]))
    return Agent(name="triage", handoffs=[weather], model=ScriptedModel([
        ModelStep(output=[function_call("transfer_to_weather", {}, call_id="c0")],
                  usage=_usage(30, 3)),
    ]))


async def _runs(count: int) -> None:
    for _ in range(count):
        await Runner.run(story(), "What is the weather?")


def timed(count: int) -> tuple[float, float]:
    """Wall time and CPU time of this thread (the event loop's, where the SDK calls the
    processor and the aggregator runs), for ``count`` runs."""
    wall, cpu = time.perf_counter(), time.thread_time()
    asyncio.run(_runs(count))
    return time.perf_counter() - wall, time.thread_time() - cpu


class SpanCounter(TracingProcessor):
    def __init__(self) -> None:
        self.spans = 0

    def on_trace_start(self, trace: Any) -> None: ...
    def on_trace_end(self, trace: Any) -> None: ...
    def on_span_start(self, span: Any) -> None: ...

    def on_span_end(self, span: Any) -> None:
        self.spans += 1

    def shutdown(self) -> None: ...
    def force_flush(self) -> None: ...


def spans_per_run() -> int:
    counter = SpanCounter()
    set_trace_processors([counter])
    asyncio.run(_runs(1))
    set_trace_processors([])
    return counter.spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=20, help="runs per measurement")
    args = parser.parse_args()

    user_processors = list(get_trace_provider()._multi_processor._processors)
    set_trace_processors([])  # the SDK's exporter to OpenAI: not part of either variant
    spans = spans_per_run()
    telemetry = start_telemetry({"server": {"port": 0}})
    events_before = telemetry.snapshot()[1].events_total

    cpu: dict[str, list[float]] = {"with": [], "without": []}

    def measure(name: str, adapter: bool) -> float:
        handle = openai_agents.instrument() if adapter else None
        try:
            wall, thread_cpu = timed(args.runs)
        finally:
            if handle is not None:
                handle.uninstrument()
        cpu[name].append(thread_cpu)
        return wall

    try:
        wall = interleave({"with": lambda: measure("with", True),
                           "without": lambda: measure("without", False)}, rounds=args.rounds)
        events = telemetry.snapshot()[1].events_total - events_before
    finally:
        telemetry.stop()
        set_trace_processors(user_processors)
    print(f"openai-agents adapter: scripted run (3 model calls, 1 tool, 1 handoff, "
          f"{spans} SDK spans), {args.rounds} rounds of {args.runs} runs")
    for label, samples in (("wall time", wall),
                           ("CPU time", {k: v[1:] for k, v in cpu.items()})):  # no warm-up
        ratios = [a / b for a, b in zip(samples["with"], samples["without"], strict=True)]
        extra_us = [(a - b) / args.runs * 1e6
                    for a, b in zip(samples["with"], samples["without"], strict=True)]
        without_ms = median(samples["without"]) / args.runs * 1e3
        print(f"  {label}: run without {without_ms:.3f} ms; with / without "
              f"{median(ratios):.4f} x ± {spread(ratios):.4f}; extra per run "
              f"{median(extra_us):.1f} us ± {spread(extra_us):.1f}, per SDK span "
              f"{median(extra_us) / spans:.2f} us")
    print(f"  signals received          {events} ({events / ((args.rounds + 1) * args.runs):.0f}"
          " per run with the adapter)")


if __name__ == "__main__":
    main()
