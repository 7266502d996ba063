"""The test double: a chat client that answers from a script, with no network and no
API key. Each turn of the script is one model call: text, or tool calls (a function
call per ``(tool, arguments)``), with the usage the turn reports."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from agent_framework import (
    BaseChatClient,
    ChatMiddlewareLayer,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
)
from agent_framework.observability import ChatTelemetryLayer

_call_ids = itertools.count(1)


@dataclass(frozen=True)
class Turn:
    """One model answer: ``text``, or ``calls`` ((tool name, arguments) pairs)."""

    text: str = ""
    calls: Sequence[tuple[str, dict[str, Any]]] = ()
    input_tokens: int = 10
    output_tokens: int = 5
    fails: type[Exception] | None = None


def say(text: str, input_tokens: int = 10, output_tokens: int = 5) -> Turn:
    return Turn(text=text, input_tokens=input_tokens, output_tokens=output_tokens)


def call(tool: str, input_tokens: int = 10, output_tokens: int = 5, **arguments: Any) -> Turn:
    return Turn(calls=[(tool, arguments)], input_tokens=input_tokens,
                output_tokens=output_tokens)


class ScriptedChatClient(FunctionInvocationLayer, ChatMiddlewareLayer, ChatTelemetryLayer,
                         BaseChatClient):
    """Answers each model call with the next :class:`Turn` of its script."""

    OTEL_PROVIDER_NAME = "scripted"

    def __init__(self, script: Sequence[Turn], model: str = "scripted-1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = list(script)
        self.model = model
        self.calls = 0

    def _next_turn(self) -> Turn:
        if self.calls >= len(self.script):
            raise AssertionError(f"the script has {len(self.script)} turns; call {self.calls + 1}")
        turn = self.script[self.calls]
        self.calls += 1
        if turn.fails is not None:
            raise turn.fails("the scripted model failed")
        return turn

    @staticmethod
    def _contents(turn: Turn) -> list[Content]:
        if turn.calls:
            return [Content.from_function_call(call_id=f"call-{next(_call_ids)}", name=name,
                                               arguments=arguments)
                    for name, arguments in turn.calls]
        return [Content.from_text(turn.text)]

    @staticmethod
    def _usage(turn: Turn) -> dict[str, int]:
        return {"input_token_count": turn.input_tokens,
                "output_token_count": turn.output_tokens,
                "total_token_count": turn.input_tokens + turn.output_tokens}

    def _inner_get_response(self, *, messages: Any, stream: bool, options: Any,
                            **kwargs: Any) -> Any:
        if stream:
            async def updates() -> AsyncIterator[ChatResponseUpdate]:
                turn = self._next_turn()
                yield ChatResponseUpdate(role="assistant", contents=self._contents(turn),
                                         model=self.model)
                yield ChatResponseUpdate(role="assistant", model=self.model, contents=[
                    Content.from_usage(self._usage(turn))])

            return ResponseStream(updates(), finalizer=ChatResponse.from_updates)

        async def respond() -> ChatResponse:
            turn = self._next_turn()
            return ChatResponse(messages=[Message(role="assistant",
                                                  contents=self._contents(turn))],
                                model=self.model, usage_details=self._usage(turn))

        return respond()
