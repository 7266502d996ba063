"""The scripted story the Google ADK adapter tests run, on a scripted model.

:class:`ScriptedLlm` is a ``google.adk.models.base_llm.BaseLlm`` answering from a list
(ADK's documented way to plug in a model; nothing leaves the process). ``triage``
transfers to its sub-agent ``billing`` (``transfer_to_agent``), which calls its
``lookup_order`` tool and answers. ADK calls no ``after_agent_callback`` for
``triage``: the adapter closes its activation on the transfer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.apps import App
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import InMemoryRunner
from google.genai import types

#: Text that must never reach a label, an attribute or /health.
PROMPT = "where is the order of patient 4111-1111-1111-1111"
ANSWER = "the secret oracle says 42"
TOOL_RESULT = "tool-output-xyzzy"
ORDER = "order-31337"

#: The model calls of the story: (agent, input tokens, output tokens).
CALLS = (("triage", 40, 8), ("billing", 60, 4), ("billing", 90, 12))


def usage(tokens_in: int, tokens_out: int) -> types.GenerateContentResponseUsageMetadata:
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=tokens_in, candidates_token_count=tokens_out,
        total_token_count=tokens_in + tokens_out)


def call(tool: str, tokens: tuple[int, int], **arguments: Any) -> LlmResponse:
    """A model response calling ``tool``."""
    return LlmResponse(content=types.Content(role="model", parts=[
        types.Part.from_function_call(name=tool, args=arguments)]), usage_metadata=usage(*tokens))


def answer(text: str, tokens: tuple[int, int]) -> LlmResponse:
    """A model response answering ``text``."""
    return LlmResponse(content=types.Content(role="model", parts=[types.Part.from_text(text=text)]),
                       usage_metadata=usage(*tokens))


class ScriptedLlm(BaseLlm):
    """Answers each request with the next scripted response (an exception is raised)."""

    model: str = "scripted"
    script: list[Any] = []

    async def generate_content_async(self, llm_request: LlmRequest,
                                     stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        yield item


def lookup_order(order: str) -> dict:
    """Looks up an order's status."""
    return {"status": TOOL_RESULT}


def agents(billing_script: list[Any] | None = None, tools: list[Any] | None = None
           ) -> LlmAgent:
    """The root agent: ``triage``, whose sub-agent is ``billing``."""
    (_, t_in, t_out), (_, b1_in, b1_out), (_, b2_in, b2_out) = CALLS
    billing = LlmAgent(
        name="billing", instruction="Answer billing questions.",
        model=ScriptedLlm(model="scripted-billing", script=billing_script or [
            call("lookup_order", (b1_in, b1_out), order=ORDER),
            answer(ANSWER, (b2_in, b2_out))]),
        tools=tools or [lookup_order])
    return LlmAgent(
        name="triage", instruction="Route the question.",
        model=ScriptedLlm(model="scripted-triage", script=[
            call("transfer_to_agent", (t_in, t_out), agent_name="billing")]),
        sub_agents=[billing])


def run(root: LlmAgent, plugins: list[Any] | None = None, prompt: str = PROMPT) -> list[Any]:
    """One invocation of ``root`` in an in-memory runner; the events it yielded."""
    runner = InMemoryRunner(app=App(name="shop", root_agent=root, plugins=plugins or []))

    async def go() -> list[Any]:
        session = await runner.session_service.create_session(app_name="shop", user_id="u")
        message = types.Content(role="user", parts=[types.Part.from_text(text=prompt)])
        return [event async for event in runner.run_async(
            user_id="u", session_id=session.id, new_message=message)]

    return asyncio.run(go())


def final_text(events: list[Any]) -> str:
    """The text of the last event that has some."""
    texts = [part.text for event in events if event.content and event.content.parts
             for part in event.content.parts if part.text]
    return texts[-1] if texts else ""


def story() -> list[Any]:
    """The transfer story's events."""
    return run(agents())
