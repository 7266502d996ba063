"""The handoff story the adapter tests run, with scripted chat clients only.

``triage`` hands off to ``billing``, which looks up the invoice with a tool and hands
off to ``refunds``, which answers; the workflow ends when ``refunds`` has spoken. Each
call builds fresh agents (a script is consumed by the run it serves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from agent_framework import Agent, tool
from agent_framework_orchestrations import HandoffBuilder

from tests.adapters.agent_framework.scripted import ScriptedChatClient, Turn, call, say

#: Text that must never reach a label, an attribute or /health.
PROMPT = "I was charged twice, card 4111-1111-1111-1111"
ANSWER = "Refund issued to the secret account xyzzy"
TOOL_OUTPUT = "invoice-tool-output-plugh"
INVOICE = "INV-90210"

#: Tokens per model call: (input, output).
TRIAGE_TOKENS = ((31, 3),)
BILLING_TOKENS = ((52, 7), (64, 4))
REFUNDS_TOKENS = ((75, 12),)

#: Called inside the tool, while billing is at work (tests look at /health from there).
tool_observers: list[Callable[[], None]] = []


@tool
def lookup_invoice(number: str) -> str:
    """The invoice with this number."""
    for observe in tool_observers:
        observe()
    return TOOL_OUTPUT


def handoff_to(target: str, tokens: tuple[int, int]) -> Turn:
    """The model's call of the handoff tool the orchestration gives each agent."""
    return call(f"handoff_to_{target}", *tokens)


def agent(name: str, script: list[Turn], **options: Any) -> Agent:
    return Agent(client=ScriptedChatClient(script, model=f"{name}-model"), name=name,
                 require_per_service_call_history_persistence=True, **options)


def agents() -> list[Agent]:
    return [
        agent("triage", [handoff_to("billing", TRIAGE_TOKENS[0])]),
        agent("billing", [call("lookup_invoice", *BILLING_TOKENS[0], number=INVOICE),
                          handoff_to("refunds", BILLING_TOKENS[1])], tools=[lookup_invoice]),
        agent("refunds", [say(ANSWER, *REFUNDS_TOKENS[0])]),
    ]


def workflow(terminate: bool = True) -> Any:
    """The handoff workflow; without ``terminate`` it asks the user after refunds
    answers (a request_info pause)."""
    triage, billing, refunds = agents()
    condition = ((lambda conversation: any(m.author_name == "refunds" for m in conversation))
                 if terminate else None)
    return (HandoffBuilder(name="support", participants=[triage, billing, refunds],
                           termination_condition=condition)
            .with_start_agent(triage).build())


def story() -> str:
    """Run the workflow to its end; the last agent's answer."""
    result = asyncio.run(workflow().run(PROMPT))
    return result.get_outputs()[-1].text
