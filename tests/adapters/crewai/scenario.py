"""Scripted crews for the adapter tests: agents answer from a script through
:class:`ScriptedLLM`, a ``BaseLLM`` subclass (no network, no API key), in CrewAI's
text (ReAct) format, so CrewAI parses and runs the tool calls itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crewai import Agent, Crew, Process, Task
from crewai.events.types.llm_events import LLMCallType
from crewai.llms.base_llm import BaseLLM, llm_call_context
from crewai.tools import tool

#: Text that must never reach a label, attribute or /health.
SECRETS = ("SECRET-QUERY-7731", "SECRET-ANSWER-4410", "SECRET-TASK-9902")

Turn = tuple[str, dict[str, int]]


def turn(text: str, inputs: int, outputs: int, cached: int = 0) -> Turn:
    usage = {"prompt_tokens": inputs, "completion_tokens": outputs}
    if cached:
        usage["cached_prompt_tokens"] = cached
    return text, usage


class ScriptedLLM(BaseLLM):
    """Answers each call with the next turn of its script and reports its usage in the
    LLM call events, as CrewAI's own providers do. Raises once the script is used up."""

    script: list[Any] = []

    def call(self, messages: Any, tools: Any = None, callbacks: Any = None,
             available_functions: Any = None, from_task: Any = None, from_agent: Any = None,
             response_model: Any = None, **kwargs: Any) -> str:
        with llm_call_context():
            self._emit_call_started_event(messages=messages, tools=tools, callbacks=callbacks,
                                          available_functions=available_functions,
                                          from_task=from_task, from_agent=from_agent)
            if not self.script:
                self._emit_call_failed_event("script used up", from_task=from_task,
                                             from_agent=from_agent)
                raise RuntimeError("script used up")
            text, usage = self.script.pop(0)
            self._emit_call_completed_event(response=text, call_type=LLMCallType.LLM_CALL,
                                            from_task=from_task, from_agent=from_agent,
                                            messages=messages, usage=usage)
            return text

    def supports_function_calling(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 100_000


@tool("lookup")
def lookup(query: str) -> str:
    """Look up a fact."""
    return f"the fact about {query}"


LOOKUP_TURN = turn('Thought: I need a fact.\nAction: lookup\n'
                   'Action Input: {"query": "SECRET-QUERY-7731"}', 120, 30, cached=100)
RESEARCH_TURN = turn("Thought: I know it now.\nFinal Answer: SECRET-ANSWER-4410", 180, 20)
WRITE_TURN = turn("Thought: done.\nFinal Answer: the report", 90, 15)


def research_crew(*, with_tool: bool = True, **crew_options: Any) -> Crew:
    """researcher (one lookup, unless ``with_tool`` is false) -> writer, sequential: one
    handoff. (CrewAI cannot checkpoint a crew with a function tool.)"""
    researcher = Agent(role="researcher", goal="find facts", backstory="careful",
                       llm=ScriptedLLM(model="scripted-research", script=[
                           LOOKUP_TURN, RESEARCH_TURN] if with_tool else [RESEARCH_TURN]),
                       tools=[lookup] if with_tool else [], allow_delegation=False)
    writer = Agent(role="writer", goal="write", backstory="clear",
                   llm=ScriptedLLM(model="scripted-writer", script=[WRITE_TURN]),
                   allow_delegation=False)
    return Crew(agents=[researcher, writer], process=Process.sequential, tasks=[
        Task(description="Research SECRET-TASK-9902", expected_output="facts", agent=researcher),
        Task(description="Write the report", expected_output="a report", agent=writer)],
        **crew_options)


def delegating_crew() -> Crew:
    """lead delegates to analyst through CrewAI's delegation tool, then answers."""
    analyst = Agent(role="analyst", goal="analyse", backstory="sharp",
                    llm=ScriptedLLM(model="scripted-analyst", script=[
                        turn("Thought: easy.\nFinal Answer: the analysis", 60, 10)]),
                    allow_delegation=False)
    lead = Agent(role="lead", goal="lead", backstory="organised", allow_delegation=True,
                 llm=ScriptedLLM(model="scripted-lead", script=[
                     turn('Thought: the analyst should do this.\n'
                          'Action: Delegate work to coworker\nAction Input: '
                          '{"task": "analyse SECRET-TASK-9902", "context": "none", '
                          '"coworker": "analyst"}', 150, 40),
                     turn("Thought: got it.\nFinal Answer: done", 200, 8)]))
    return Crew(agents=[lead, analyst], process=Process.sequential, tasks=[
        Task(description="Lead SECRET-TASK-9902", expected_output="done", agent=lead)])


def no_secrets(output: Any):  # no return annotation: CrewAI rejects a string one
    """A task guardrail: blocks an answer that leaks the secret."""
    text = str(getattr(output, "raw", output))
    return ("SECRET" not in text, "the answer leaks a secret" if "SECRET" in text else text)


def guarded_crew() -> Crew:
    """One task whose first answer the guardrail blocks; the retry passes."""
    agent = Agent(role="writer", goal="write", backstory="clear", allow_delegation=False,
                  llm=ScriptedLLM(model="scripted-writer", script=[
                      RESEARCH_TURN, WRITE_TURN]))
    return Crew(agents=[agent], tasks=[Task(description="Write", expected_output="text",
                                            agent=agent, guardrail=no_secrets)])


def failing_crew() -> Crew:
    """The only agent's model fails: the kickoff fails."""
    agent = Agent(role="writer", goal="write", backstory="clear", allow_delegation=False,
                  max_retry_limit=0, llm=ScriptedLLM(model="scripted-writer", script=[]))
    return Crew(agents=[agent], tasks=[Task(description="Write", expected_output="text",
                                            agent=agent)])


def run(make: Callable[[], Crew]) -> Any:
    return make().kickoff()
