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

import sys
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

from benchmarks.adapters.rounds import (
    arguments,
    instrumented,
    measure_rounds,
    print_rounds,
    timed_runs,
)
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


def timed(count: int) -> tuple[float, float]:
    """Wall time and CPU time of this thread (the event loop's, where the SDK calls the
    processor and the aggregator runs), for ``count`` runs."""
    return timed_runs(lambda: Runner.run(story(), "What is the weather?"), count)


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
    timed(1)
    set_trace_processors([])
    return counter.spans


def main() -> None:
    args = arguments(__doc__, runs=20)
    user_processors = list(get_trace_provider()._multi_processor._processors)
    set_trace_processors([])  # the SDK's exporter to OpenAI: not part of either variant
    spans = spans_per_run()

    def with_adapter() -> tuple[float, float]:
        with instrumented(openai_agents.instrument):
            return timed(args.runs)

    try:
        wall, cpu, events = measure_rounds(
            {"with": with_adapter, "without": lambda: timed(args.runs)}, args.rounds)
    finally:
        set_trace_processors(user_processors)
    print_rounds(f"openai-agents adapter: scripted run (3 model calls, 1 tool, 1 handoff, "
                 f"{spans} SDK spans)",
                 wall, cpu, runs=args.runs, rounds=args.rounds, calls_per_run=spans,
                 call_name="SDK span", events=events)


if __name__ == "__main__":
    main()
