"""Google ADK adapter: a runner plugin whose callbacks send our signals.

:class:`TelemetryPlugin` is a ``google.adk.plugins.base_plugin.BasePlugin``, ADK's own
extension point: ``Runner(..., plugins=[TelemetryPlugin()])`` (or ``App(plugins=[...])``)
instruments one runner. ``instrument()`` does it for every runner in the process: it
registers the same plugin with each ``Runner`` made from then on (``InMemoryRunner``
included), unless the runner already has one of ours; the handle's ``plugin`` is that
plugin, for a runner made before. ``uninstrument()`` puts ``Runner.__init__`` back and
makes the plugin inert, also in runners that already hold it.

What it maps (docs/adapters/google_adk.md has the full table)::

    before_run / after_run          workflow_started / workflow_completed (one
                                      invocation is one workflow)
    on_run_error                    error_occurred, workflow_failed
    before_agent / after_agent      agent_activated / agent_deactivated
    on_agent_error                  error_occurred, agent_deactivated
    on_event: an event whose        handoff_started from the event's author, and that
      actions.transfer_to_agent       agent's activation closed (ADK calls no
      is set                          after_agent for the agent that transferred);
                                      handoff_completed when the target starts
    before_model / after_model      llm_called with the response's usage_metadata
    on_model_error                  llm_called with error_type, error_occurred
    before_tool / after_tool        tool_started / tool_completed (the transfer tool
                                      is the handoff, not a tool call)
    on_tool_error                   tool_completed with error_type, error_occurred

Every callback returns None, so ADK goes on exactly as without the plugin; our work is
guarded (an exception there is counted and logged once, never raised). Only names
cross over: agent, tool and model names, exception class names as error types.
Prompts, responses and tool arguments stay in the run.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from google.adk.plugins.base_plugin import BasePlugin
from google.adk.runners import Runner

from telemetry.adapters.base import (
    AdapterEmitter,
    Instrumentation,
    active_trace_fields,
    call_key,
    token_count,
)

FRAMEWORK = "google_adk"
#: The workflow_type of the workflow an invocation is.
WORKFLOW_TYPE = "google_adk"
#: The plugin's name in a runner's plugin manager (names are unique there).
PLUGIN_NAME = "yolo_telemetry"
#: ADK's tool behind ``transfer_to_agent``: reported as the handoff it is.
TRANSFER_TOOL = "transfer_to_agent"
#: The agent of an event or callback that names none.
UNNAMED_AGENT = "agent"
#: Open invocations kept at most: one whose caller stops iterating ``run_async`` never
#: gets ``after_run_callback``; past this the oldest is forgotten (memory stays bounded).
MAX_OPEN_INVOCATIONS = 4096


@dataclass
class _Invocation:
    """What one invocation (one runner run) has open."""

    workflow_id: str
    started: float
    #: agent -> number of its activations still open (an agent may run nested).
    active: dict[str, int] = field(default_factory=dict)
    #: target agent -> (from agent, when the transfer was seen).
    transfers: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: (agent, model call) start times, a stack per agent.
    models: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    #: tool call id -> start time.
    tools: dict[str, float] = field(default_factory=dict)
    last_agent: str = UNNAMED_AGENT
    #: exceptions already sent as error_occurred: one that fails a tool, then its
    #: agent, then the run is one error, not three.
    errors: list[BaseException] = field(default_factory=list)


class TelemetryPlugin(BasePlugin):
    """Sends our signals from an ADK runner's callbacks; see the module doc.

    One plugin serves any number of runners and concurrent invocations: its state is
    kept per ``invocation_id``.
    """

    def __init__(self, emitter: AdapterEmitter | None = None, name: str = PLUGIN_NAME) -> None:
        super().__init__(name=name)
        self.emitter = emitter or AdapterEmitter(FRAMEWORK)
        self.enabled = True
        self._runs: dict[str, _Invocation] = {}
        self._lock = threading.Lock()
        guard = self.emitter.guard
        self._run_began, self._run_ended = guard(self._run_started), guard(self._run_done)
        self._agent_began, self._agent_ended = guard(self._agent_started), guard(self._agent_done)
        self._event_seen = guard(self._event)
        self._model_began, self._model_ended = guard(self._model_started), guard(self._model_done)
        self._tool_began, self._tool_ended = guard(self._tool_started), guard(self._tool_done)

    # -- ADK's callbacks: each returns None (ADK carries on unchanged) ---------------

    async def before_run_callback(self, *, invocation_context: Any) -> None:
        if self.enabled:
            self._run_began(invocation_context)

    async def after_run_callback(self, *, invocation_context: Any) -> None:
        self._run_ended(invocation_context, None)

    async def on_run_error_callback(self, *, invocation_context: Any, error: Exception) -> None:
        self._run_ended(invocation_context, error)

    async def before_agent_callback(self, *, agent: Any, callback_context: Any) -> None:
        self._agent_began(callback_context, _name(agent))

    async def after_agent_callback(self, *, agent: Any, callback_context: Any) -> None:
        self._agent_ended(callback_context, _name(agent), None)

    async def on_agent_error_callback(self, *, agent: Any, callback_context: Any,
                                      error: Exception) -> None:
        self._agent_ended(callback_context, _name(agent), error)

    async def on_event_callback(self, *, invocation_context: Any, event: Any) -> None:
        self._event_seen(invocation_context, event)

    async def before_model_callback(self, *, callback_context: Any, llm_request: Any) -> None:
        self._model_began(callback_context, llm_request)

    async def after_model_callback(self, *, callback_context: Any, llm_response: Any) -> None:
        self._model_ended(callback_context, llm_response, None)

    async def on_model_error_callback(self, *, callback_context: Any, llm_request: Any,
                                      error: Exception) -> None:
        self._model_ended(callback_context, None, error)

    async def before_tool_callback(self, *, tool: Any, tool_args: Any,
                                   tool_context: Any) -> None:
        self._tool_began(tool, tool_context)

    async def after_tool_callback(self, *, tool: Any, tool_args: Any, tool_context: Any,
                                  result: Any) -> None:
        self._tool_ended(tool, tool_args, tool_context, None)

    async def on_tool_error_callback(self, *, tool: Any, tool_args: Any, tool_context: Any,
                                     error: BaseException) -> None:
        self._tool_ended(tool, tool_args, tool_context, error)

    # -- runs ------------------------------------------------------------------------

    def _run_started(self, invocation_context: Any) -> None:
        run = _Invocation(str(invocation_context.invocation_id), time.perf_counter())
        with self._lock:
            if len(self._runs) >= MAX_OPEN_INVOCATIONS:
                self._runs.pop(next(iter(self._runs)))
            self._runs[run.workflow_id] = run
        self._send("yolo.workflow_started", workflow_id=run.workflow_id,
                   workflow_type=WORKFLOW_TYPE, **active_trace_fields())

    def _run_done(self, invocation_context: Any, error: BaseException | None) -> None:
        with self._lock:
            run = self._runs.pop(str(invocation_context.invocation_id), None)
        if run is None:  # started before instrument(), or already ended
            return
        if error is not None:
            self._error(run, run.last_agent, error)
        for agent, count in list(run.active.items()):  # left open by an error or a transfer
            for _ in range(count):
                self._send("yolo.agent_deactivated", agent=agent, workflow_id=run.workflow_id)
        duration = time.perf_counter() - run.started
        if error is None:
            self._send("yolo.workflow_completed", workflow_id=run.workflow_id,
                       duration_s=duration)
        else:
            self._send("yolo.workflow_failed", workflow_id=run.workflow_id,
                       duration_s=duration, error_type=_error_type(error))

    # -- agents and transfers ----------------------------------------------------------

    def _agent_started(self, context: Any, agent: str) -> None:
        run = self._run_of(context)
        if run is None:
            return
        transfer = run.transfers.pop(agent, None)
        if transfer is not None:
            source, seen = transfer
            self._send("yolo.handoff_completed", from_agent=source, to_agent=agent,
                       duration_s=time.perf_counter() - seen, workflow_id=run.workflow_id)
        run.active[agent] = run.active.get(agent, 0) + 1
        run.last_agent = agent
        self._send("yolo.agent_activated", agent=agent, workflow_id=run.workflow_id)

    def _agent_done(self, context: Any, agent: str, error: BaseException | None) -> None:
        run = self._run_of(context)
        if run is None:
            return
        if error is not None:
            self._error(run, agent, error)
        self._deactivate(run, agent)

    def _deactivate(self, run: _Invocation, agent: str) -> None:
        """Close one open activation of ``agent``; nothing when none is open (ADK may
        call after_agent for an agent whose transfer already closed it)."""
        count = run.active.get(agent, 0)
        if count <= 0:
            return
        if count == 1:
            del run.active[agent]
        else:
            run.active[agent] = count - 1
        self._send("yolo.agent_deactivated", agent=agent, workflow_id=run.workflow_id)

    def _event(self, invocation_context: Any, event: Any) -> None:
        actions = getattr(event, "actions", None)
        target = getattr(actions, "transfer_to_agent", None)
        if not target:
            return
        run = self._run_of(invocation_context)
        if run is None:
            return
        source = getattr(event, "author", None) or run.last_agent
        self._send("yolo.handoff_started", from_agent=source, to_agent=target,
                   workflow_id=run.workflow_id)
        run.transfers[target] = (source, time.perf_counter())
        # ADK never calls after_agent for the agent that transferred: it ends here
        self._deactivate(run, source)

    # -- model calls -----------------------------------------------------------------

    def _model_started(self, context: Any, llm_request: Any) -> None:
        run = self._run_of(context)
        if run is not None:
            model = getattr(llm_request, "model", None)
            run.models.setdefault(_agent_of(context), []).append(
                (time.perf_counter(), model if isinstance(model, str) and model else ""))

    def _model_done(self, context: Any, response: Any, error: BaseException | None) -> None:
        if response is not None and getattr(response, "partial", False):
            return  # a streamed fragment: the final response carries the usage
        run = self._run_of(context)
        if run is None:
            return
        agent = _agent_of(context)
        calls = run.models.get(agent)
        started, model = calls.pop() if calls else (time.perf_counter(), "")
        fields: dict[str, Any] = {"workflow_id": run.workflow_id}
        input_tokens = output_tokens = 0
        usage = getattr(response, "usage_metadata", None)
        if usage is not None:
            input_tokens = (token_count(usage.prompt_token_count)
                            + token_count(usage.tool_use_prompt_token_count))
            output_tokens = (token_count(usage.candidates_token_count)
                             + token_count(usage.thoughts_token_count))
            cached = min(token_count(usage.cached_content_token_count), input_tokens)
            if cached:
                fields["cached_input_tokens"] = cached
        version = getattr(response, "model_version", None)
        if isinstance(version, str) and version:
            model = version
        if error is not None:
            fields["error_type"] = _error_type(error)
            self._error(run, agent, error)
        self._send("yolo.llm_called", agent=agent, model=model or "unknown",
                   duration_s=time.perf_counter() - started, input_tokens=input_tokens,
                   output_tokens=output_tokens, **fields)

    # -- tools -----------------------------------------------------------------------

    def _tool_started(self, tool: Any, context: Any) -> None:
        run = self._run_of(context)
        name = _name(tool)
        if run is None or name == TRANSFER_TOOL:
            return
        run.tools[_call_id(context)] = time.perf_counter()
        self._send("yolo.tool_started", agent=_agent_of(context), tool=name,
                   workflow_id=run.workflow_id)

    def _tool_done(self, tool: Any, arguments: Any, context: Any,
                   error: BaseException | None) -> None:
        run = self._run_of(context)
        name = _name(tool)
        if run is None or name == TRANSFER_TOOL:
            return
        agent = _agent_of(context)
        started = run.tools.pop(_call_id(context), None)
        fields: dict[str, Any] = {"workflow_id": run.workflow_id}
        key = _call_key(arguments)
        if key is not None:
            fields["call_key"] = key
        if error is not None:
            fields["error_type"] = _error_type(error)
            self._error(run, agent, error)
        duration = time.perf_counter() - started if started is not None else 0.0
        self._send("yolo.tool_completed", agent=agent, tool=name, duration_s=duration,
                   **fields)

    # -- helpers -----------------------------------------------------------------------

    def _error(self, run: _Invocation, agent: str, error: BaseException) -> None:
        """error_occurred for ``error``, once however many callbacks report it."""
        if any(seen is error for seen in run.errors):
            return
        run.errors.append(error)
        self._send("yolo.error_occurred", agent=agent, error_type=_error_type(error),
                   workflow_id=run.workflow_id)

    def _run_of(self, context: Any) -> _Invocation | None:
        """The open invocation a callback belongs to; None when disabled or unknown."""
        if not self.enabled:
            return None
        return self._runs.get(str(getattr(context, "invocation_id", "")))

    def _send(self, signal_name: str, **fields: Any) -> None:
        self.emitter.send(signal_name, **fields)


def _name(thing: Any) -> str:
    name = getattr(thing, "name", None)
    return name if isinstance(name, str) and name.strip() else UNNAMED_AGENT


def _agent_of(context: Any) -> str:
    name = getattr(context, "agent_name", None)
    return name if isinstance(name, str) and name.strip() else UNNAMED_AGENT


def _call_id(context: Any) -> str:
    call_id = getattr(context, "function_call_id", None)
    return call_id if isinstance(call_id, str) and call_id else f"{_agent_of(context)}?"


def _error_type(error: BaseException) -> str:
    """The exception's class name: never its message, which may quote the prompt."""
    return type(error).__name__


#: The tool call fingerprint (a module attribute, so a test can make it fail).
_call_key = call_key


# -- instrument / uninstrument ----------------------------------------------------------

_lock = threading.Lock()
_current_handle: Instrumentation | None = None


def _has_ours(runner: Any) -> bool:
    plugins = getattr(getattr(runner, "plugin_manager", None), "plugins", ())
    return any(isinstance(plugin, TelemetryPlugin) and plugin.enabled for plugin in plugins)


def instrument(**options: Any) -> Instrumentation:
    """Register our plugin with every ADK ``Runner`` made from now on and return the
    handle (its ``plugin`` is the plugin, to pass to a runner made before); calling it
    again while instrumented returns the same handle. Options: ``sender`` (what blinker
    passes as the sender of every signal)."""
    global _current_handle
    with _lock:
        if _current_handle is not None and _current_handle.active:
            return _current_handle
        plugin = TelemetryPlugin(AdapterEmitter(FRAMEWORK, options.get("sender")))
        original = Runner.__dict__["__init__"]

        @functools.wraps(original)
        def init_with_telemetry(self: Runner, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if plugin.enabled and not _has_ours(self):
                plugin.emitter.guard(self.plugin_manager.register_plugin)(plugin)

        Runner.__init__ = init_with_telemetry  # type: ignore[method-assign]

        def undo() -> None:
            plugin.enabled = False  # inert at once, also in runners that hold it
            if Runner.__dict__.get("__init__") is init_with_telemetry:
                Runner.__init__ = original  # type: ignore[method-assign]

        _current_handle = Instrumentation(FRAMEWORK, undo)
        _current_handle.plugin = plugin  # type: ignore[attr-defined]
        return _current_handle
