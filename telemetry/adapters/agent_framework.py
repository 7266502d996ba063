"""Microsoft Agent Framework adapter: agent, function and chat middleware, and an
observer of workflow events, that send our signals.

Agent Framework has no process-wide middleware registry: middleware is given to an
agent (``Agent(..., middleware=[...])``), to a run (``agent.run(..., middleware=[...])``)
or to a chat client. :func:`middleware` returns our three, to give by hand.
``instrument()`` does it for every agent run in the process: it wraps
``AgentMiddlewareLayer.run`` (the ``run`` of ``Agent`` and its subclasses) so that each
run gets them as run middleware, and ``Workflow._run_core`` (the one path of
``Workflow.run``, streamed or not) so that each workflow's events are observed.
``uninstrument()`` puts both back. Each middleware marks the context it handles, so an
agent that has ours already is reported once.

What it maps (docs/adapters/agent_framework.md has the full table)::

    Workflow.run                     workflow_started / completed (failed on a
                                       ``failed`` event or an exception)
    ... stopped with pending         mode_changed paused; the next run of the same
      requests (request_info)          workflow answering them: mode_changed active
    handoff_sent (HandoffSentEvent)  handoff_started; handoff_completed when the
                                       target agent's run starts (or the workflow stops)
    an agent run (agent middleware)  agent_activated / agent_deactivated; outside any
                                       workflow it is a workflow of its own; inside
                                       another agent's tool it is a handoff (delegation)
    a chat call (chat middleware)    llm_called with the response's usage_details
    a tool call (function middleware) tool_started / tool_completed
    an exception in any of them      error_occurred (and error_type on the call's signal)

Only names cross over: agent, tool and model names, and exception class names as error
types. Messages, results and tool arguments stay in the run.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, contextmanager
from typing import Any

from agent_framework import (
    AgentMiddleware,
    AgentMiddlewareLayer,
    ChatMiddleware,
    FunctionMiddleware,
    ResponseStream,
    Workflow,
)

from telemetry.adapters.agent_framework_runs import (
    WORKFLOW_TYPE,
    RunBook,
    agent_name,
    current_agent,
    error_type,
)
from telemetry.adapters.base import AdapterEmitter, Instrumentation, call_key, token_count

FRAMEWORK = "agent_framework"
#: The key each of our middleware sets in the context's ``metadata``: a context already
#: marked is being reported by another of ours.
MARK = "yolo_telemetry"

#: The emitter of middleware made without one.
_default_emitter = AdapterEmitter(FRAMEWORK)


class _Ours:
    """What our three middleware share: the run book, the switch, the mark."""

    def __init__(self, book: RunBook) -> None:
        self.book = book
        self.enabled = True

    def _claim(self, context: Any) -> bool:
        """Whether this middleware reports ``context`` (and mark it so no other does)."""
        metadata = getattr(context, "metadata", None)
        if not self.enabled or not isinstance(metadata, dict) or metadata.get(MARK):
            return False
        metadata[MARK] = True
        return True

    def _send(self, signal_name: str, **fields: Any) -> None:
        self.book.send(signal_name, **fields)


class TelemetryAgentMiddleware(_Ours, AgentMiddleware):
    """An agent run: activation, deactivation, errors; a workflow or a handoff around it."""

    def __init__(self, book: RunBook) -> None:
        super().__init__(book)
        guard = book.emitter.guard
        self._begin = guard(self._run_started)
        self._end = guard(self._run_ended)
        self._streamed = guard(self._stream_attached)

    async def process(self, context: Any, call_next: Any) -> None:
        if not self._claim(context):
            await call_next()
            return
        begun = self._begin(context)
        if begun is None:  # our own failure: the run goes on untouched
            await call_next()
            return
        try:
            await call_next()
        except BaseException as error:
            self._end(begun, error)
            raise
        if isinstance(context.result, ResponseStream) and self._streamed(context, begun):
            return  # the run happens while the stream is read: it ends with the stream
        self._end(begun, None)

    def _run_started(self, context: Any) -> tuple[Any, Any, float]:
        frame, token = self.book.agent_started(agent_name(context.agent))
        return frame, token, time.perf_counter()

    def _run_ended(self, begun: tuple[Any, Any, float], error: BaseException | None) -> None:
        frame, token, started = begun
        RunBook.leave(frame, token)
        self.book.agent_ended(frame, started, error)

    def _stream_attached(self, context: Any, begun: tuple[Any, Any, float]) -> bool:
        """Report a streamed run when its stream is read to the end (or fails): the
        model and tool calls happen during the pulls, each with the run on top."""
        frame, token, started = begun
        RunBook.leave(frame, token)
        stream = context.result

        @contextmanager
        def inside_the_run() -> Any:
            pulled = RunBook.enter(frame)
            try:
                yield
            finally:
                RunBook.leave(frame, pulled)

        def ended() -> None:
            self._end((frame, None, started), getattr(stream, "_stream_error", None))

        stream.with_pull_context_manager(inside_the_run)
        stream.with_cleanup_hook(ended)
        return True


class TelemetryFunctionMiddleware(_Ours, FunctionMiddleware):
    """A tool call: tool_started / tool_completed, with a digest of the arguments."""

    def __init__(self, book: RunBook) -> None:
        super().__init__(book)
        self._begin = book.emitter.guard(self._tool_started)
        self._end = book.emitter.guard(self._tool_completed)

    async def process(self, context: Any, call_next: Any) -> None:
        if not self._claim(context):
            await call_next()
            return
        started = self._begin(context)
        try:
            await call_next()
        except BaseException as error:
            self._end(context, started, error)
            raise
        self._end(context, started, None)

    def _tool_started(self, context: Any) -> float:
        agent, workflow_id = _where()
        self._send("yolo.tool_started", agent=agent, tool=context.function.name,
                   **workflow_id)
        return time.perf_counter()

    def _tool_completed(self, context: Any, started: float | None,
                        error: BaseException | None) -> None:
        agent, workflow = _where()
        fields = dict(workflow)
        key = _call_key(_arguments(context.arguments))
        if key is not None:
            fields["call_key"] = key
        if error is not None:
            fields["error_type"] = error_type(error)
            self._send("yolo.error_occurred", agent=agent, error_type=fields["error_type"],
                       **workflow)
        duration = time.perf_counter() - started if started is not None else 0.0
        self._send("yolo.tool_completed", agent=agent, tool=context.function.name,
                   duration_s=duration, **fields)


class TelemetryChatMiddleware(_Ours, ChatMiddleware):
    """A chat client call: llm_called with the model, provider and usage_details."""

    def __init__(self, book: RunBook) -> None:
        super().__init__(book)
        self._done = book.emitter.guard(self._called)
        self._streamed = book.emitter.guard(self._stream_attached)

    async def process(self, context: Any, call_next: Any) -> None:
        if not self._claim(context):
            await call_next()
            return
        started = time.perf_counter()
        try:
            await call_next()
        except BaseException as error:
            self._done(context, started, None, error)
            raise
        if isinstance(context.result, ResponseStream) and self._streamed(context, started):
            return
        self._done(context, started, context.result, None)

    def _stream_attached(self, context: Any, started: float) -> bool:
        stream = context.result
        where = _where()

        def finished(response: Any) -> None:
            self._done(context, started, response, None, where)

        def failed() -> None:
            error = getattr(stream, "_stream_error", None)
            if error is not None:
                self._done(context, started, None, error, where)

        stream.with_result_hook(finished)
        stream.with_cleanup_hook(failed)
        return True

    def _called(self, context: Any, started: float, response: Any,
                error: BaseException | None, where: tuple[str, dict] | None = None) -> None:
        agent, workflow = where or _where()
        fields = dict(workflow)
        input_tokens = output_tokens = 0
        usage = getattr(response, "usage_details", None) or {}
        if usage:
            input_tokens = token_count(usage.get("input_token_count"))
            output_tokens = token_count(usage.get("output_token_count"))
            cached = min(token_count(usage.get("cache_read_input_token_count")), input_tokens)
            if cached:
                fields["cached_input_tokens"] = cached
        provider = getattr(context.client, "OTEL_PROVIDER_NAME", None)
        if isinstance(provider, str) and provider and provider != "unknown":
            fields["provider"] = provider
        if error is not None:
            fields["error_type"] = error_type(error)
            self._send("yolo.error_occurred", agent=agent, error_type=fields["error_type"],
                       **workflow)
        self._send("yolo.llm_called", agent=agent, model=_model(context, response),
                   duration_s=time.perf_counter() - started, input_tokens=input_tokens,
                   output_tokens=output_tokens, **fields)


def _where() -> tuple[str, dict[str, Any]]:
    """The agent a model or tool call belongs to, and its workflow id as signal fields
    (none for a chat client called outside any agent run)."""
    frame = current_agent()
    if frame is None:
        return "unknown", {}
    return frame.agent, {"workflow_id": frame.run.workflow_id}


def _model(context: Any, response: Any) -> str:
    """The model that answered, else the one asked for, else the client's."""
    options = getattr(context, "options", None) or {}
    for source, keys in ((response, ("model", "model_id")), (options, ("model", "model_id")),
                         (context.client, ("model", "model_id"))):
        for key in keys:
            value = source.get(key) if isinstance(source, dict) else getattr(source, key, None)
            if isinstance(value, str) and value:
                return value
    return "unknown"


def _arguments(arguments: Any) -> Any:
    dump = getattr(arguments, "model_dump", None)
    return dump() if callable(dump) else arguments


#: The tool call fingerprint (a module attribute, so a test can make it fail).
_call_key = call_key


def middleware(*, emitter: AdapterEmitter | None = None) -> list[Any]:
    """Our agent, function and chat middleware, for ``Agent(..., middleware=...)`` or
    ``agent.run(..., middleware=...)`` where ``instrument()`` is not wanted."""
    book = RunBook(emitter or _default_emitter)
    return [TelemetryAgentMiddleware(book), TelemetryFunctionMiddleware(book),
            TelemetryChatMiddleware(book)]


# -- workflows --------------------------------------------------------------------------


class WorkflowObserver:
    """Turns a ``Workflow`` run's events into signals as they pass (see the module doc)."""

    def __init__(self, book: RunBook) -> None:
        self.book = book
        self.enabled = True
        #: workflows stopped with requests pending -> their run, resumed by the next run
        self.paused: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        guard = book.emitter.guard
        self._started = guard(self._workflow_started)
        self._event = guard(self._saw)
        self._stopped = guard(self.book.workflow_stopped)

    async def observe(self, workflow: Any, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
        begun = None
        failure: str | None = None
        try:
            async with aclosing(events) as stream:  # type: ignore[type-var]
                async for event in stream:
                    if begun is None and self.enabled and event.type == "started":
                        begun = self._started(workflow)
                    elif begun is not None:
                        failure = self._event(begun[0], event) or failure
                    yield event
        except BaseException as error:
            failure = failure or error_type(error)
            raise
        finally:
            if begun is not None:
                self._stopped(*begun, failure, self.paused, workflow)

    def _workflow_started(self, workflow: Any) -> tuple[Any, Any, bool]:
        name = getattr(workflow, "name", None)
        named = isinstance(name, str) and name and name != getattr(
            workflow, "_generated_name", None)
        return self.book.workflow_started(workflow, self.paused,
                                          name if named else WORKFLOW_TYPE)

    def _saw(self, run: Any, event: Any) -> str | None:
        """Handle one event; the error type when it says the workflow failed."""
        kind = event.type
        if kind == "handoff_sent":
            data = event.data
            self.book.handoff_sent(run, str(data.source), str(data.target))
        elif kind == "status":
            state = getattr(event, "state", None)
            run.paused = getattr(state, "value", state) == "IDLE_WITH_PENDING_REQUESTS"
        elif kind == "failed":
            details = getattr(event, "details", None)
            failed_as = getattr(details, "error_type", None)
            return failed_as if isinstance(failed_as, str) and failed_as else "WorkflowFailed"
        return None


# -- instrument / uninstrument ----------------------------------------------------------

_lock = threading.Lock()
_current_handle: Instrumentation | None = None


def _has_ours(given: Sequence[Any] | None) -> bool:
    return any(isinstance(m, TelemetryAgentMiddleware) for m in given or ())


def instrument(**options: Any) -> Instrumentation:
    """Give every Agent Framework agent run our middleware and observe every workflow
    run in the process; return the handle (the same one while instrumented). Options:
    ``sender`` (what blinker passes as the sender of every signal)."""
    global _current_handle
    with _lock:
        if _current_handle is not None and _current_handle.active:
            return _current_handle
        book = RunBook(AdapterEmitter(FRAMEWORK, options.get("sender")))
        ours = [TelemetryAgentMiddleware(book), TelemetryFunctionMiddleware(book),
                TelemetryChatMiddleware(book)]
        observer = WorkflowObserver(book)
        original_run = AgentMiddlewareLayer.__dict__["run"]
        original_core = Workflow.__dict__["_run_core"]

        @functools.wraps(original_run)
        def run_with_telemetry(self: Any, *args: Any, **kwargs: Any) -> Any:
            given = kwargs.get("middleware")
            if observer.enabled and not _has_ours(given):
                kwargs["middleware"] = [*(given or ()), *ours]
            return original_run(self, *args, **kwargs)

        @functools.wraps(original_core)
        def run_core_with_telemetry(self: Any, *args: Any, **kwargs: Any) -> Any:
            return observer.observe(self, original_core(self, *args, **kwargs))

        AgentMiddlewareLayer.run = run_with_telemetry  # type: ignore[method-assign]
        Workflow._run_core = run_core_with_telemetry  # type: ignore[method-assign]

        def undo() -> None:
            observer.enabled = False  # inert at once, even if wrapped again since
            for middle in ours:
                middle.enabled = False
            if AgentMiddlewareLayer.__dict__.get("run") is run_with_telemetry:
                AgentMiddlewareLayer.run = original_run  # type: ignore[method-assign]
            if Workflow.__dict__.get("_run_core") is run_core_with_telemetry:
                Workflow._run_core = original_core  # type: ignore[method-assign]

        _current_handle = Instrumentation(FRAMEWORK, undo)
        _current_handle.middleware = ours  # type: ignore[attr-defined]
        _current_handle.observer = observer  # type: ignore[attr-defined]
        return _current_handle
