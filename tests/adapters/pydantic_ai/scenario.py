"""The scripted story the Pydantic AI adapter tests run, on the framework's test models.

``lead`` (a ``FunctionModel``) calls its ``ask_researcher`` tool, which runs the
``researcher`` agent (a ``TestModel``): a delegation. The researcher's usage is added
to the lead's run (``usage=ctx.usage``, as Pydantic AI's docs do it), so the run's
total is what our token metrics must add up to.
"""

from __future__ import annotations

import inspect
from typing import Any

from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

#: Text that must never reach a label, an attribute or /health.
PROMPT = "summarise the findings on patient 4111-1111-1111-1111"
ANSWER = "the secret oracle says 42"
RESEARCH = "research-output-xyzzy"

#: The lead's two model calls: (input, output) tokens.
LEAD_TOKENS = ((40, 8), (60, 4))


def lead_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """First call: delegate through the tool; second call (the tool's result is in): answer."""
    if len(messages) == 1:
        (tokens_in, tokens_out) = LEAD_TOKENS[0]
        return ModelResponse(parts=[ToolCallPart("ask_researcher", {"question": PROMPT})],
                             usage=RequestUsage(input_tokens=tokens_in,
                                                output_tokens=tokens_out))
    (tokens_in, tokens_out) = LEAD_TOKENS[1]
    return ModelResponse(parts=[TextPart(ANSWER)],
                         usage=RequestUsage(input_tokens=tokens_in, output_tokens=tokens_out))


def agents(**lead_options: Any) -> tuple[Agent, Agent]:
    """(lead, researcher), fresh."""
    researcher = Agent(TestModel(custom_output_text=RESEARCH), name="researcher")
    lead = Agent(FunctionModel(lead_model), name="lead", **lead_options)

    @lead.tool
    async def ask_researcher(ctx: RunContext[None], question: str) -> str:
        """Ask the researcher agent."""
        result = await researcher.run(question, usage=ctx.usage)
        return result.output

    return lead, researcher


def story(**lead_options: Any) -> Any:
    """The lead's run result."""
    lead, _ = agents(**lead_options)
    return lead.run_sync(PROMPT)


def run_usage(result: Any) -> Any:
    """A run result's ``RunUsage`` (a method before 2.0, a property since)."""
    return result.usage() if inspect.ismethod(result.usage) else result.usage
