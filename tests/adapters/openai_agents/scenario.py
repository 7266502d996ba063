"""The scripted story the adapter tests run: no LLM, only ``agents.testing.ScriptedModel``.

Run 1: ``triage`` hands off to ``weather``, which calls the ``get_weather`` tool and
answers. Run 2: ``guarded``'s input guardrail ``no_secrets`` trips. Each call builds
fresh agents (a scripted model is consumed by the run it serves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    Runner,
    function_tool,
    input_guardrail,
)
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage

#: Text that must never reach a label, an attribute or /health.
PROMPT = "what is the weather in Paris? my card is 4111-1111-1111-1111"
ANSWER = "It is sunny in Paris, said the secret oracle"
TOOL_OUTPUT = "sunny-tool-output-xyzzy"

#: Tokens the scripted model reports, per call: (input, output).
TRIAGE_TOKENS = (30, 3)
WEATHER_TOKENS = ((50, 10), (70, 5))


def usage(input_tokens: int, output_tokens: int) -> Usage:
    return Usage(requests=1, input_tokens=input_tokens, output_tokens=output_tokens,
                 total_tokens=input_tokens + output_tokens)


#: Called inside the tool, while the agent handed off to is at work (tests look at
#: /health from there).
tool_observers: list[Callable[[], None]] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    for observe in tool_observers:
        observe()
    return TOOL_OUTPUT


def handoff_agents() -> Agent:
    """``triage`` (to be run) handing off to ``weather``."""
    (tool_in, tool_out), (answer_in, answer_out) = WEATHER_TOKENS
    weather = Agent(name="weather", instructions="Answer with the weather.", tools=[get_weather],
                    model=ScriptedModel([
                        ModelStep(output=[function_call("get_weather", {"city": "Paris"},
                                                        call_id="call-1")],
                                  usage=usage(tool_in, tool_out)),
                        ModelStep(output=[assistant_message(ANSWER)],
                                  usage=usage(answer_in, answer_out)),
                    ]))
    return Agent(name="triage", instructions="Hand weather questions over.", handoffs=[weather],
                 model=ScriptedModel([
                     ModelStep(output=[function_call("transfer_to_weather", {},
                                                     call_id="call-0")],
                               usage=usage(*TRIAGE_TOKENS)),
                 ]))


@input_guardrail
async def no_secrets(ctx: Any, agent: Agent, user_input: Any) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)


def guarded_agent() -> Agent:
    return Agent(name="guarded", input_guardrails=[no_secrets],
                 model=ScriptedModel([[assistant_message(ANSWER)]]))


async def run_story() -> str:
    """Both runs; the first one's answer. The second run raises the tripwire, as the
    SDK does when a guardrail blocks."""
    result = await Runner.run(handoff_agents(), PROMPT)
    try:
        await Runner.run(guarded_agent(), PROMPT)
    except InputGuardrailTripwireTriggered:
        pass
    else:
        raise AssertionError("the guardrail did not trip")
    return result.final_output


def story() -> str:
    return asyncio.run(run_story())
