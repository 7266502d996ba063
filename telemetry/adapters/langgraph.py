"""LangGraph adapter: graph runs, nodes, LLM and tool calls, interrupts and checkpoint
saves of LangGraph applications as our signals.

``instrument()`` registers a langchain-core callback handler through langchain-core's
configure hook (``register_configure_hook``), which adds it to the callbacks of every
run in the process, so graphs need no ``config={"callbacks": [...]}``. The handler also
is a LangGraph ``GraphCallbackHandler`` (when the installed LangGraph has one): passed in
``config["callbacks"]`` it gets LangGraph's own interrupt and resume events too (static
breakpoints included); without it, interrupts are seen from the node that raised
``GraphInterrupt`` and resumes from the next run of the thread.

langchain's callbacks do not report checkpoint writes: a checkpointer is watched when it
is given (``instrument(checkpointers=[saver])`` or ``handle.watch_checkpointer(saver)``),
by wrapping that one object's ``put``/``aput``.

Which callback means which signal is in :mod:`telemetry.adapters.graph_runs` and in
docs/adapters/langgraph.md. No prompt, output or tool input leaves the process: a tool
call's ``call_key`` is a hash of its input.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook
from langgraph.errors import GraphBubbleUp, GraphInterrupt

from telemetry.adapters.base import AdapterEmitter, Instrumentation
from telemetry.adapters.graph_runs import BUBBLE, ERROR, INTERRUPT, GraphTracker

try:  # LangGraph's lifecycle callbacks (interrupt, resume) are recent
    from langgraph.callbacks import GraphCallbackHandler as _HandlerBase
except ImportError:  # pragma: no cover - older LangGraph
    _HandlerBase = BaseCallbackHandler  # type: ignore[assignment, misc]

#: Whether the installed LangGraph has lifecycle callbacks (interrupt, resume): 1.1.8 on.
GRAPH_CALLBACKS = _HandlerBase is not BaseCallbackHandler

__all__ = ["LangGraphInstrumentation", "TelemetryCallbackHandler", "instrument"]

FRAMEWORK = "langgraph"

#: The callbacks the handler implements; each is guarded so that it never raises.
_CALLBACKS = ("on_chain_start", "on_chain_end", "on_chain_error", "on_chat_model_start",
              "on_llm_start", "on_llm_end", "on_llm_error", "on_tool_start", "on_tool_end",
              "on_tool_error", "on_retriever_start", "on_retriever_end",
              "on_retriever_error", "on_interrupt", "on_resume")


class TelemetryCallbackHandler(_HandlerBase):  # type: ignore[misc, valid-type]
    """The callback handler ``instrument()`` installs; it only extracts names, types and
    counts from the callbacks and leaves the bookkeeping to :class:`GraphTracker`."""

    run_inline = True   # in order, on the caller's thread, also for async graphs
    raise_error = False

    def __init__(self, tracker: GraphTracker, emitter: AdapterEmitter) -> None:
        self.tracker = tracker
        for name in _CALLBACKS:
            setattr(self, name, emitter.guard(getattr(self, name)))

    # chains: graph runs, nodes and everything inside them
    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: Any,
                       parent_run_id: Any = None, tags: list[str] | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.tracker.enabled:
            name = kwargs.get("name") or _serialized_name(serialized)
            self.tracker.chain_start(run_id, parent_run_id, name, tags, metadata)

    def on_chain_end(self, outputs: Any, *, run_id: Any, **kwargs: Any) -> None:
        if self.tracker.enabled:
            self.tracker.chain_end(run_id, isinstance(outputs, dict) and "__interrupt__" in outputs)

    def on_chain_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        if self.tracker.enabled:
            kind = (INTERRUPT if isinstance(error, GraphInterrupt)
                    else BUBBLE if isinstance(error, GraphBubbleUp) else ERROR)
            self.tracker.chain_error(run_id, type(error).__name__, kind)

    # LLM calls
    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: Any, *,
                            run_id: Any, parent_run_id: Any = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._llm_start(serialized, run_id, parent_run_id, metadata, kwargs)

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: Any, *, run_id: Any,
                     parent_run_id: Any = None, metadata: dict[str, Any] | None = None,
                     **kwargs: Any) -> None:
        self._llm_start(serialized, run_id, parent_run_id, metadata, kwargs)

    def _llm_start(self, serialized: dict[str, Any] | None, run_id: Any, parent_run_id: Any,
                   metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        if self.tracker.enabled and parent_run_id is not None:
            metadata = metadata or {}
            params = kwargs.get("invocation_params") or {}
            model = (metadata.get("ls_model_name") or params.get("model")
                     or params.get("model_name"))
            if not model:  # a model without a name: its class, as the GenAI spans do
                model = _serialized_name(serialized)
            self.tracker.llm_start(run_id, parent_run_id, _text(model),
                                   _text(metadata.get("ls_provider")))

    def on_llm_end(self, response: Any, *, run_id: Any, **kwargs: Any) -> None:
        if self.tracker.enabled:
            self.tracker.llm_end(run_id, *token_usage(response))

    def on_llm_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        if self.tracker.enabled:
            self.tracker.llm_end(run_id, None, 0, 0, None, type(error).__name__)

    # tool calls
    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *,
                      run_id: Any, parent_run_id: Any = None, **kwargs: Any) -> None:
        if self.tracker.enabled and parent_run_id is not None:
            tool = (serialized or {}).get("name") or kwargs.get("name") or "tool"
            self.tracker.tool_start(run_id, parent_run_id, str(tool), str(input_str))

    def on_tool_end(self, output: Any, *, run_id: Any, **kwargs: Any) -> None:
        if self.tracker.enabled:
            self.tracker.tool_end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        if self.tracker.enabled:
            self.tracker.tool_end(run_id, type(error).__name__)

    # retrievers are followed as plain runs (their parent's agent), sending nothing
    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *,
                           run_id: Any, parent_run_id: Any = None, **kwargs: Any) -> None:
        if self.tracker.enabled:
            self.tracker.other_start(run_id, parent_run_id)

    def on_retriever_end(self, documents: Any, *, run_id: Any, **kwargs: Any) -> None:
        self.tracker.other_end(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        self.tracker.other_end(run_id)

    # LangGraph's lifecycle callbacks (only for handlers in config["callbacks"])
    def on_interrupt(self, event: Any) -> None:
        if self.tracker.enabled:
            self.tracker.interrupted(event.run_id)

    def on_resume(self, event: Any) -> None:
        if self.tracker.enabled:
            self.tracker.resumed(event.run_id)


def token_usage(response: Any) -> tuple[str | None, int, int, int | None]:
    """(model, input, output, cached input tokens) of an ``LLMResult``: the messages'
    ``usage_metadata``, else the provider's ``llm_output`` token usage."""
    model: str | None = None
    inputs = outputs = 0
    cached: int | None = None
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            if message is None:
                continue
            usage = getattr(message, "usage_metadata", None)
            if usage:
                inputs += int(usage.get("input_tokens") or 0)
                outputs += int(usage.get("output_tokens") or 0)
                read = (usage.get("input_token_details") or {}).get("cache_read")
                if read:
                    cached = (cached or 0) + int(read)
            if model is None:
                meta = getattr(message, "response_metadata", None) or {}
                model = _text(meta.get("model_name") or meta.get("model"))
    if not inputs and not outputs and isinstance(response.llm_output, dict):
        usage = response.llm_output.get("token_usage") or response.llm_output.get("usage") or {}
        inputs = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
        outputs = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
    return model, inputs, outputs, cached


def _serialized_name(serialized: dict[str, Any] | None) -> str | None:
    if not serialized:
        return None
    name = serialized.get("name")
    if name:
        return str(name)
    ident = serialized.get("id")
    return str(ident[-1]) if isinstance(ident, list) and ident else None


def _text(value: Any) -> str | None:
    return str(value) if value else None


# -- the process-wide hook -----------------------------------------------------------

class _HandlerSlot:
    """What langchain-core's configure hook reads: it calls ``get()`` on each registered
    hook for every callback manager it configures and adds the handler it returns. A
    ContextVar would hold the handler for one context (one thread) only; this slot holds
    it for the whole process, and holds None after ``uninstrument()``."""

    def __init__(self) -> None:
        self.handler: TelemetryCallbackHandler | None = None
        self.registered = False

    def get(self, default: Any = None) -> TelemetryCallbackHandler | None:
        return self.handler if self.handler is not None else default


_slot = _HandlerSlot()
_lock = threading.Lock()
_active: LangGraphInstrumentation | None = None
_in_save: contextvars.ContextVar[bool] = contextvars.ContextVar("yolo_langgraph_in_save",
                                                                 default=False)


class LangGraphInstrumentation(Instrumentation):
    """The handle of :func:`instrument`: ``handler`` for ``config["callbacks"]`` (for
    LangGraph's own interrupt and resume events), and :meth:`watch_checkpointer`."""

    def __init__(self, handler: TelemetryCallbackHandler, emitter: AdapterEmitter) -> None:
        super().__init__(FRAMEWORK, self._undo_all)
        self.handler = handler
        self.emitter = emitter
        self._watched: list[Callable[[], None]] = []

    def watch_checkpointer(self, saver: Any) -> Any:
        """Send ``yolo.state_saved`` for each checkpoint ``saver`` writes; returns it."""
        with self._lock:
            if self.active and not getattr(saver, "_yolo_watched", False):
                self._watched.append(_watch(saver, self.emitter))
        return saver

    def _undo_all(self) -> None:
        global _active
        with _lock:
            if _slot.handler is self.handler:
                _slot.handler = None
            if _active is self:
                _active = None
        self.handler.tracker.enabled = False
        for undo in self._watched:
            undo()
        self._watched.clear()


def instrument(*, skip_nodes: Collection[str] = ("tools",),
               checkpointers: Iterable[Any] = (), track_mode: bool = True,
               ) -> LangGraphInstrumentation:
    """Report every LangGraph graph run in this process as our signals.

    ``skip_nodes``: nodes that are no agents (the prebuilt tool node ``tools`` by default):
    no activation, no handoff; their tool and LLM calls count for the agent before them.
    ``checkpointers``: savers whose checkpoint writes count as state saves.
    ``track_mode``: send ``paused``/``active`` for interrupts and resumes.

    Idempotent: while instrumented, a second call returns the same handle (uninstrument
    first to change the options).
    """
    global _active
    with _lock:
        if _active is None:
            emitter = AdapterEmitter(FRAMEWORK)
            tracker = GraphTracker(emitter, skip_nodes=skip_nodes, track_mode=track_mode)
            handler = TelemetryCallbackHandler(tracker, emitter)
            if not _slot.registered:
                register_configure_hook(_slot, inheritable=True)  # type: ignore[arg-type]
                _slot.registered = True
            _slot.handler = handler
            _active = LangGraphInstrumentation(handler, emitter)
        active = _active
    for saver in checkpointers:
        active.watch_checkpointer(saver)
    return active


# -- checkpoint saves ----------------------------------------------------------------

def _watch(saver: Any, emitter: AdapterEmitter) -> Callable[[], None]:
    """Wrap ``saver.put`` and ``saver.aput`` on this object only; returns the undo.
    A save made inside another (``aput`` calling ``put``) counts once."""
    put, aput = saver.put, saver.aput

    @emitter.guard
    def record(start: float, args: tuple, kwargs: dict) -> None:
        checkpoint = args[1] if len(args) > 1 else kwargs.get("checkpoint")
        emitter.send("yolo.state_saved", duration_s=time.perf_counter() - start,
                     size_bytes=checkpoint_size(saver, checkpoint))

    @functools.wraps(put)
    def timed_put(*args: Any, **kwargs: Any) -> Any:
        if _in_save.get():
            return put(*args, **kwargs)
        token, start = _in_save.set(True), time.perf_counter()
        try:
            result = put(*args, **kwargs)
        finally:
            _in_save.reset(token)
        record(start, args, kwargs)
        return result

    @functools.wraps(aput)
    async def timed_aput(*args: Any, **kwargs: Any) -> Any:
        if _in_save.get():
            return await aput(*args, **kwargs)
        token, start = _in_save.set(True), time.perf_counter()
        try:
            result = await aput(*args, **kwargs)
        finally:
            _in_save.reset(token)
        record(start, args, kwargs)
        return result

    saver.put, saver.aput, saver._yolo_watched = timed_put, timed_aput, True

    def undo() -> None:
        for name, wrapper in (("put", timed_put), ("aput", timed_aput)):
            if saver.__dict__.get(name) is wrapper:
                delattr(saver, name)
        saver.__dict__.pop("_yolo_watched", None)

    return undo


def checkpoint_size(saver: Any, checkpoint: Any) -> int:
    """The bytes the saver's serializer makes of ``checkpoint`` (0 when it has none)."""
    serde = getattr(saver, "serde", None)
    if checkpoint is None or serde is None:
        return 0
    return len(serde.dumps_typed(checkpoint)[1])
