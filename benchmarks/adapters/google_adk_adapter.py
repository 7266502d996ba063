"""What the Google ADK adapter costs a scripted run: time with / without it.

    nox -s "adapters(framework='google_adk')" --install-only    # the framework's venv
    .nox/adapters-framework-google_adk/bin/python benchmarks/adapters/google_adk_adapter.py
    ... --rounds 15 --runs 10

One run is the adapter tests' story on a scripted ``BaseLlm`` (no LLM, no network):
``triage`` transfers to ``billing``, which calls a tool and answers: 1 invocation, 2
agents, 3 model calls, 1 tool call (and the transfer tool), 1 transfer. Telemetry is
started once (the default metrics pipeline, server on a free port) and receives in
every variant; "with" has our plugin in the runner, "empty plugin" a ``BasePlugin``
with no callbacks of its own, "no-op callbacks" one overriding the 13 callbacks ours
does with ``async`` functions that do nothing: what ADK itself charges for a plugin and
for calling its callbacks, which the adapter cannot avoid. Runners are made per run,
as the tests do.
Each measurement times ``--runs`` runs in one event loop; the variants alternate in
rounds, the order rotating, the first round discarded (benchmarks/README.md, "Method").
Printed, for wall time and for the CPU time of the running thread: the median of the
per-round ratios with half their interquartile range, and the extra time per callback
that does work (run 2, agent 3, event 1, model 6, tool 2).
This is a measurement, not a test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout
os.environ["GOOGLE_GENAI_USE_ENTERPRISE"] = "false"

from google.adk.agents import LlmAgent
from google.adk.apps import App
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_response import LlmResponse
from google.adk.plugins.base_plugin import BasePlugin
from google.adk.runners import InMemoryRunner
from google.genai import types

from benchmarks.adapters.rounds import arguments, measure_rounds, print_rounds, timed_runs
from telemetry.adapters import google_adk as adapter

#: Callbacks per run that do work: before/after run, 2 before_agent + 1 after_agent,
#: the transfer event, 3 before/after model pairs, 1 before/after tool pair.
CALLBACKS_PER_RUN = 2 + 3 + 1 + 6 + 2


def reply(part: types.Part, tokens_in: int, tokens_out: int) -> LlmResponse:
    return LlmResponse(content=types.Content(role="model", parts=[part]),
                       usage_metadata=types.GenerateContentResponseUsageMetadata(
                           prompt_token_count=tokens_in, candidates_token_count=tokens_out))


class ScriptedLlm(BaseLlm):
    """Answers the n-th request of a run with the n-th scripted response, forever."""

    script: list = []
    turn: int = 0

    async def generate_content_async(self, llm_request, stream=False):
        item = self.script[self.turn % len(self.script)]
        self.turn += 1
        yield item


def lookup(order: str) -> dict:
    """Looks up an order."""
    return {"status": "shipped"}


billing = LlmAgent(name="billing", tools=[lookup], model=ScriptedLlm(model="b", script=[
    reply(types.Part.from_function_call(name="lookup", args={"order": "A1"}), 60, 4),
    reply(types.Part.from_text(text="shipped"), 90, 12)]))
triage = LlmAgent(name="triage", sub_agents=[billing], model=ScriptedLlm(model="t", script=[
    reply(types.Part.from_function_call(name="transfer_to_agent",
                                        args={"agent_name": "billing"}), 40, 8)]))
MESSAGE = types.Content(role="user", parts=[types.Part.from_text(text="where?")])


class EmptyPlugin(BasePlugin):
    """A plugin with no callbacks of its own."""

    def __init__(self) -> None:
        super().__init__(name="empty")


async def _nothing(self: BasePlugin, **_: object) -> None:
    return None


#: A plugin overriding the 13 callbacks ours does, each doing nothing: what ADK charges
#: for calling them.
NoopPlugin = type("NoopPlugin", (EmptyPlugin,), {
    name: _nothing for name in vars(adapter.TelemetryPlugin) if name.endswith("_callback")})


async def _run(plugins: list) -> None:
    runner = InMemoryRunner(app=App(name="shop", root_agent=triage, plugins=list(plugins)))
    session = await runner.session_service.create_session(app_name="shop", user_id="u")
    async for _event in runner.run_async(user_id="u", session_id=session.id,
                                         new_message=MESSAGE):
        pass


def main() -> None:
    args = arguments(__doc__, runs=10)
    plugins = {"with": [adapter.TelemetryPlugin()], "without": [], "empty plugin": [EmptyPlugin()],
               "no-op callbacks": [NoopPlugin()]}
    wall, cpu, events = measure_rounds(
        {name: (lambda chosen=chosen: timed_runs(lambda: _run(chosen), args.runs))
         for name, chosen in plugins.items()}, args.rounds)
    print_rounds("google-adk adapter: scripted run (1 invocation, 2 agents, "
                 "3 model calls, 1 tool, 1 transfer)",
                 wall, cpu, runs=args.runs, rounds=args.rounds, calls_per_run=CALLBACKS_PER_RUN,
                 call_name="callback", events=events)


if __name__ == "__main__":
    main()
