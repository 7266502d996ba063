"""Pydantic AI adapter: an agent capability whose hooks send our signals.

:class:`TelemetryCapability` is a Pydantic AI capability (its public hooks API):
``Agent(..., capabilities=[TelemetryCapability()])`` instruments one agent.
``instrument()`` does it for every agent in the process: it wraps ``Agent.iter``, the
method every run goes through (``run``, ``run_sync``, ``run_stream``, ...), so each
run gets the capability as a run capability (``iter(capabilities=...)``), unless the
run or the agent already has one; ``uninstrument()`` puts ``Agent.iter`` back.

What it maps (docs/adapters/pydantic_ai.md has the full table)::

    a run, outside any other run      workflow_started / completed (or failed)
    a run (any)                       agent_activated / agent_deactivated
    a run started inside another      handoff_started / handoff_completed (when it
      run's tool (delegation)           returns) from the outer run's agent; a
                                        contextvar stack of runs tells them apart
    a model request                   llm_called (model, provider, the response's usage:
                                        what ctx.usage adds up)
    a tool execution                  tool_started / tool_completed
    a run's, a request's or a         error_occurred; the tool's or request's own signal
      tool's exception                  carries error_type too

Only names cross over: agent, tool and model names, and exception class names as
error types. Prompts, outputs and tool arguments stay in the run.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.capabilities import AbstractCapability

from telemetry.adapters.base import (
    AdapterEmitter,
    Instrumentation,
    active_trace_fields,
    call_key,
    token_count,
)

FRAMEWORK = "pydantic_ai"

#: The name of an agent that has none (``Agent(name=None)`` and no inferred name).
UNNAMED_AGENT = "agent"
#: The workflow_type of a workflow an outermost run starts.
WORKFLOW_TYPE = "pydantic_ai"


@dataclass(frozen=True)
class _Frame:
    """One run on the delegation stack, and the capability that reports it (a run that
    has two of ours, the agent's and the instrumentation's, is reported once)."""

    agent: str
    workflow_id: str
    run_id: str | None = None
    owner: Any = None


#: The runs this context is inside, outermost first: a run whose stack is not empty
#: was started by a tool of the run on top (delegation). Tool tasks inherit it.
_stack: contextvars.ContextVar[tuple[_Frame, ...]] = contextvars.ContextVar(
    "yolo_telemetry_pydantic_ai_runs", default=())

#: The emitter of the process-wide instrumentation and of capabilities made without one.
_default_emitter = AdapterEmitter(FRAMEWORK)


@dataclass
class TelemetryCapability(AbstractCapability[Any]):
    """Sends our signals from a Pydantic AI agent's run, model request and tool hooks.

    Every hook calls the framework's handler exactly as it would without this
    capability, and returns or raises what the handler did; our own work around it is
    guarded (an exception there is counted and logged once, never raised).
    """

    emitter: AdapterEmitter | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        emitter = self.emitter or _default_emitter
        self.emitter = emitter
        self._begin_run = emitter.guard(self._run_started)
        self._end_run = emitter.guard(self._run_ended)
        self._model_done = emitter.guard(self._model_requested)
        self._tool_begin = emitter.guard(self._tool_started)
        self._tool_done = emitter.guard(self._tool_completed)

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # not part of an agent spec: it carries live state

    # -- runs ------------------------------------------------------------------------

    async def wrap_run(self, ctx: Any, *, handler: Any) -> Any:
        if not self.enabled or _reported(ctx):
            return await handler()
        begun = self._begin_run(ctx)
        if begun is None:  # our own failure: the run goes on untouched
            return await handler()
        frame, token, started = begun
        try:
            result = await handler()
        except BaseException as error:
            self._end_run(frame, token, started, error)
            raise
        self._end_run(frame, token, started, None)
        return result

    def _run_started(self, ctx: Any) -> tuple[_Frame, contextvars.Token, float]:
        outer = _stack.get()
        agent = _agent_name(ctx)
        run_id = getattr(ctx, "run_id", None)
        if outer:
            parent = outer[-1]
            frame = _Frame(agent, parent.workflow_id, run_id, self)
            # the outer agent delegated to this one from a tool: a handoff, until the
            # delegated run returns
            self._send("yolo.handoff_started", from_agent=parent.agent, to_agent=agent,
                       workflow_id=frame.workflow_id)
        else:
            frame = _Frame(agent, run_id or uuid.uuid4().hex, run_id, self)
            self._send("yolo.workflow_started", workflow_id=frame.workflow_id,
                       workflow_type=WORKFLOW_TYPE, **active_trace_fields())
        self._send("yolo.agent_activated", agent=agent, workflow_id=frame.workflow_id)
        return frame, _stack.set((*outer, frame)), time.perf_counter()

    def _run_ended(self, frame: _Frame, token: contextvars.Token, started: float,
                   error: BaseException | None) -> None:
        try:
            _stack.reset(token)
        except ValueError:  # ended in another context than it started (a cancelled task)
            _stack.set(_stack.get()[:-1])
        error_type = _error_type(error) if error is not None else None
        if error_type is not None:
            self._send("yolo.error_occurred", agent=frame.agent, error_type=error_type,
                       workflow_id=frame.workflow_id)
        self._send("yolo.agent_deactivated", agent=frame.agent, workflow_id=frame.workflow_id)
        duration = time.perf_counter() - started
        outer = _stack.get()
        if outer:  # a delegated run: the handoff is complete, the outer run goes on
            self._send("yolo.handoff_completed", from_agent=outer[-1].agent,
                       to_agent=frame.agent, duration_s=duration,
                       workflow_id=frame.workflow_id)
            return
        if error_type is None:
            self._send("yolo.workflow_completed", workflow_id=frame.workflow_id,
                       duration_s=duration)
        else:
            self._send("yolo.workflow_failed", workflow_id=frame.workflow_id,
                       duration_s=duration, error_type=error_type)

    # -- model requests --------------------------------------------------------------

    async def wrap_model_request(self, ctx: Any, *, request_context: Any, handler: Any) -> Any:
        if not self._owns():
            return await handler(request_context)
        started = time.perf_counter()
        try:
            response = await handler(request_context)
        except Exception as error:
            self._model_done(ctx, started, None, error)
            raise
        self._model_done(ctx, started, response, None)
        return response

    def _model_requested(self, ctx: Any, started: float, response: Any,
                         error: BaseException | None) -> None:
        frame = _current(ctx)
        fields: dict[str, Any] = {"workflow_id": frame.workflow_id}
        input_tokens = output_tokens = 0
        model = None
        if response is not None:
            usage = response.usage
            input_tokens = token_count(usage.input_tokens)
            output_tokens = token_count(usage.output_tokens)
            cached = min(token_count(getattr(usage, "cache_read_tokens", 0)), input_tokens)
            if cached:
                fields["cached_input_tokens"] = cached
            model = response.model_name
            provider = getattr(response, "provider_name", None)
            if provider:
                fields["provider"] = provider
        if error is not None:
            fields["error_type"] = _error_type(error)
            self._send("yolo.error_occurred", agent=frame.agent,
                       error_type=fields["error_type"], workflow_id=frame.workflow_id)
        self._send("yolo.llm_called", agent=frame.agent, model=model or _model_name(ctx),
                   duration_s=time.perf_counter() - started, input_tokens=input_tokens,
                   output_tokens=output_tokens, **fields)

    # -- tools -----------------------------------------------------------------------

    async def wrap_tool_execute(self, ctx: Any, *, call: Any, tool_def: Any, args: Any,
                                handler: Any) -> Any:
        if not self._owns():
            return await handler(args)
        started = self._tool_begin(ctx, call)
        try:
            result = await handler(args)
        except Exception as error:
            self._tool_done(ctx, call, started, error)
            raise
        self._tool_done(ctx, call, started, None)
        return result

    def _tool_started(self, ctx: Any, call: Any) -> float:
        frame = _current(ctx)
        self._send("yolo.tool_started", agent=frame.agent, tool=call.tool_name,
                   workflow_id=frame.workflow_id)
        return time.perf_counter()

    def _tool_completed(self, ctx: Any, call: Any, started: float | None,
                        error: BaseException | None) -> None:
        frame = _current(ctx)
        fields: dict[str, Any] = {"workflow_id": frame.workflow_id}
        key = _call_key(call.args)
        if key is not None:
            fields["call_key"] = key
        if error is not None:
            fields["error_type"] = _error_type(error)
            self._send("yolo.error_occurred", agent=frame.agent,
                       error_type=fields["error_type"], workflow_id=frame.workflow_id)
        duration = time.perf_counter() - started if started is not None else 0.0
        self._send("yolo.tool_completed", agent=frame.agent, tool=call.tool_name,
                   duration_s=duration, **fields)

    def _owns(self) -> bool:
        """Whether this capability reports the run the current hook belongs to."""
        stack = _stack.get()
        return self.enabled and bool(stack) and stack[-1].owner is self

    def _send(self, signal_name: str, **fields: Any) -> None:
        self.emitter.send(signal_name, **fields)  # type: ignore[union-attr]


def _agent_name(ctx: Any) -> str:
    agent = getattr(ctx, "agent", None)
    name = getattr(agent, "name", None)
    return name if isinstance(name, str) and name.strip() else UNNAMED_AGENT


def _current(ctx: Any) -> _Frame:
    """The run a model or tool hook belongs to: the top of the stack (``_owns`` made
    sure there is one)."""
    return _stack.get()[-1]


def _reported(ctx: Any) -> bool:
    """Whether another of our capabilities already reports this run."""
    stack = _stack.get()
    run_id = getattr(ctx, "run_id", None)
    return bool(stack) and run_id is not None and stack[-1].run_id == run_id


def _model_name(ctx: Any) -> str:
    model = getattr(ctx, "model", None)
    name = getattr(model, "model_name", None)
    return name if isinstance(name, str) and name else "unknown"


def _error_type(error: BaseException) -> str:
    """The exception's class name: never its message, which may quote the prompt."""
    return type(error).__name__


#: The tool call fingerprint (a module attribute, so a test can make it fail).
_call_key = call_key


# -- instrument / uninstrument ----------------------------------------------------------

_lock = threading.Lock()
_current_handle: Instrumentation | None = None


def _has_ours(capabilities: Sequence[Any] | None) -> bool:
    return any(isinstance(c, TelemetryCapability) for c in capabilities or ())


def instrument(**options: Any) -> Instrumentation:
    """Give every Pydantic AI agent run in the process our capability and return the
    handle; calling it again while instrumented returns the same handle. Options:
    ``sender`` (what blinker passes as the sender of every signal)."""
    global _current_handle
    with _lock:
        if _current_handle is not None and _current_handle.active:
            return _current_handle
        capability = TelemetryCapability(AdapterEmitter(FRAMEWORK, options.get("sender")))
        original = Agent.__dict__["iter"]

        @functools.wraps(original)
        def iter_with_telemetry(self: Agent, *args: Any, **kwargs: Any) -> Any:
            given = kwargs.get("capabilities")
            if capability.enabled and not _has_ours(given):
                kwargs["capabilities"] = [*(given or ()), capability]
            return original(self, *args, **kwargs)

        Agent.iter = iter_with_telemetry  # type: ignore[method-assign]

        def undo() -> None:
            capability.enabled = False  # inert at once, even if iter was wrapped again
            if Agent.__dict__.get("iter") is iter_with_telemetry:
                Agent.iter = original  # type: ignore[method-assign]

        _current_handle = Instrumentation(FRAMEWORK, undo)
        _current_handle.capability = capability  # type: ignore[attr-defined]
        return _current_handle
