"""The LLM and tool calls inside the reference orchestrator's agent turns.

Each agent works with one model (the prices are list prices per million tokens, so
the cost each call reports is plausible) and a few tools. A decision is one LLM
call: its prompt is the agent's context plus a system prompt, of which the part
the provider has seen before is cached. Tool calls come after it and take time of
their own; their ``call_key`` is a fingerprint of the arguments (here random, or
fixed while an agent repeats itself: its first tool, e.g. dev rerunning the same
failing tests), never the arguments.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    #: USD per million input, cached input and output tokens.
    input_per_mtok: float
    cached_input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, cached_tokens: int, output_tokens: int) -> float:
        fresh = input_tokens - cached_tokens
        return round((fresh * self.input_per_mtok + cached_tokens * self.cached_input_per_mtok
                      + output_tokens * self.output_per_mtok) / 1e6, 6)


SONNET = Model("claude-sonnet-4-5", "anthropic", 3.0, 0.3, 15.0)
GPT = Model("gpt-4.1", "openai", 2.0, 0.5, 8.0)
MINI = Model("gpt-4.1-mini", "openai", 0.4, 0.1, 1.6)
MODEL_OF = {"analyst": GPT, "pm": GPT, "ux-expert": MINI, "architect": SONNET, "po": MINI,
            "sm": MINI, "dev": SONNET, "qa": SONNET}
#: Tokens of an agent's system prompt and instructions, sent with every call.
SYSTEM_PROMPT_TOKENS = 1500

#: Each agent's tools, with their median duration (simulated seconds).
TOOLS: dict[str, tuple[tuple[str, float], ...]] = {
    "analyst": (("web_search", 2.0), ("read_file", 0.05)),
    "pm": (("read_file", 0.05), ("write_file", 0.05)),
    "ux-expert": (("write_file", 0.05),),
    "architect": (("read_file", 0.05), ("search_code", 0.8)),
    "po": (("read_file", 0.05),),
    "sm": (("write_file", 0.05),),
    "dev": (("run_tests", 12.0), ("read_file", 0.05), ("edit_file", 0.05)),
    "qa": (("run_tests", 12.0), ("read_file", 0.05)),
}
TOOL_ERROR_TYPES = ("ToolTimeout", "NonZeroExit", "FileNotFound")


class AgentCalls:
    """Sends ``llm_called`` and ``tool_started``/``tool_completed`` for the orchestrator.

    ``emit`` sends a signal, ``spend`` lets simulated time pass for an operation and
    returns it, ``duration`` draws a plausible duration around a median.
    """

    def __init__(self, rng: random.Random, emit: Callable[..., None],
                 spend: Callable[[float], float],
                 duration: Callable[[float, float], float],
                 tool_error_probability: float = 0.03) -> None:
        self.random = rng
        self.emit = emit
        self.spend = spend
        self.duration = duration
        self.tool_error_probability = tool_error_probability
        self.calls = 0
        self.tokens = 0

    def llm_call(self, agent: str, workflow_id: str, duration_s: float, context_tokens: int,
                 *, error_type: str | None = None) -> None:
        """One chat call of ``duration_s`` (already spent by the caller); a failed call
        (``error_type``) used no tokens."""
        model = MODEL_OF.get(agent, MINI)
        if error_type is None:
            prompt = SYSTEM_PROMPT_TOKENS + context_tokens + self.random.randint(100, 900)
            cached = int(prompt * self.random.uniform(0.4, 0.8))
            output = self.random.randint(150, 1500)
        else:
            prompt = cached = output = 0
        extra = {"error_type": error_type} if error_type else {}
        self.calls += 1
        self.tokens += prompt + output
        self.emit("llm_called", agent=agent, model=model.name, provider=model.provider,
                  duration_s=duration_s, input_tokens=prompt, output_tokens=output,
                  cached_input_tokens=cached, cost_usd=model.cost(prompt, cached, output),
                  workflow_id=workflow_id, **extra)

    def tool_calls(self, agent: str, workflow_id: str, *, repeating: bool = False) -> None:
        """What an agent does with its tools after a decision: none to two calls, or,
        ``repeating``, the same failing call of its first tool twice."""
        tools = TOOLS.get(agent, ())
        if repeating and tools:
            for _ in range(2):
                self.tool_call(agent, tools[0], workflow_id, f"{tools[0][0]}:same-arguments",
                               error_type="NonZeroExit")
            return
        for _ in range(self.random.choice((0, 1, 1, 2))):
            tool = self.random.choice(tools)
            error = (self.random.choice(TOOL_ERROR_TYPES)
                     if self.random.random() < self.tool_error_probability else None)
            self.tool_call(agent, tool, workflow_id, f"{tool[0]}:{self.random.getrandbits(64):x}",
                           error_type=error)

    def tool_call(self, agent: str, tool: tuple[str, float], workflow_id: str, call_key: str,
                  *, error_type: str | None = None) -> None:
        name, median = tool
        self.emit("tool_started", agent=agent, tool=name, call_key=call_key,
                  workflow_id=workflow_id)
        duration = self.spend(self.duration(median, 0.6))
        extra = {"error_type": error_type} if error_type else {}
        self.emit("tool_completed", agent=agent, tool=name, duration_s=duration,
                  call_key=call_key, workflow_id=workflow_id, **extra)
