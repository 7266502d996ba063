"""TracedOrchestrator: wrap orchestrator code instead of sending signals by hand.

Everything here only *sends signals*: the spans come from the same tracer as for
any orchestrator, and the metrics from the same aggregator. There is no second
tracing path to keep in step::

    class Orchestrator(TracedOrchestrator):
        def run(self, story):
            with self.workflow(f"wf-{story.id}", "greenfield-fullstack"):
                with self.agent("pm"):
                    with self.decision("pm", "prioritise"):
                        ...
                with self.handoff("pm", "dev") as handoff:
                    send_to_dev_process(handoff.inject({"story": story.id}))

        @agent_step("qa")               # the same as a `with self.agent("qa")` block
        def review(self): ...

The current workflow id is kept in a context variable, so nested blocks, threads
started with ``contextvars.copy_context()`` and asyncio tasks pick it up without
passing it around. An exception leaving a block is reported (``error_occurred`` for
an agent, ``workflow_failed`` for a workflow) and re-raised unchanged.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from telemetry import signals
from telemetry.tracing import propagation

try:  # the live context needs OpenTelemetry's API; without it there are no spans anyway
    from telemetry.tracing import live as _live
except ImportError:  # pragma: no cover - the otlp extra not installed
    _live = None  # type: ignore[assignment]

F = TypeVar("F", bound=Callable[..., Any])

_workflow_id: ContextVar[str | None] = ContextVar("yolo_workflow_id", default=None)


def current_workflow_id() -> str | None:
    """The workflow id of the innermost :func:`workflow_scope` block, if any."""
    return _workflow_id.get()


def _with_workflow(fields: dict[str, Any], workflow_id: str | None) -> dict[str, Any]:
    workflow_id = workflow_id or _workflow_id.get()
    if workflow_id is not None:
        fields["workflow_id"] = workflow_id
    return fields


@contextmanager
def workflow_scope(workflow_id: str, workflow_type: str | None = None, *, sender: Any = None,
                   **trace_fields: str) -> Iterator[str]:
    """``workflow_started`` now, ``workflow_completed``/``workflow_failed`` at exit.

    ``trace_fields`` (``traceparent``...) continue a trace from another process.
    """
    fields: dict[str, Any] = {"workflow_id": workflow_id, **trace_fields}
    if workflow_type:
        fields["workflow_type"] = workflow_type
    token = _workflow_id.set(workflow_id)
    started = time.perf_counter()
    signals.workflow_started.send(sender, **fields)
    try:
        yield workflow_id
    except BaseException as error:
        signals.workflow_failed.send(sender, workflow_id=workflow_id,
                                     duration_s=time.perf_counter() - started,
                                     error_type=type(error).__name__)
        raise
    else:
        signals.workflow_completed.send(sender, workflow_id=workflow_id,
                                        duration_s=time.perf_counter() - started)
    finally:
        _workflow_id.reset(token)


@contextmanager
def agent_scope(agent: str, workflow_id: str | None = None, *, sender: Any = None,
                **trace_fields: str) -> Iterator[None]:
    """``agent_activated`` now, ``agent_deactivated`` at exit; an exception leaving the
    block also sends ``error_occurred`` with the exception object."""
    fields = _with_workflow({"agent": agent}, workflow_id)
    signals.agent_activated.send(sender, **fields, **trace_fields)
    try:
        yield
    except Exception as error:
        signals.error_occurred.send(sender, **fields, error_type=type(error).__name__,
                                    exception=error)
        raise
    finally:
        signals.agent_deactivated.send(sender, **fields)


class Handoff:
    """What a :func:`handoff_scope` block gets: the handoff's identity and ``inject``."""

    def __init__(self, from_agent: str, to_agent: str, workflow_id: str | None) -> None:
        self.from_agent = from_agent
        self.to_agent = to_agent
        self.workflow_id = workflow_id

    def inject(self, payload: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Put this handoff's trace context into ``payload`` for the receiving process."""
        return propagation.inject(payload, workflow_id=self.workflow_id)


@contextmanager
def handoff_scope(from_agent: str, to_agent: str, workflow_id: str | None = None, *,
                  sender: Any = None) -> Iterator[Handoff]:
    """``handoff_started`` now, ``handoff_completed`` (timed) when the block succeeds.

    A failing block sends ``error_occurred`` for ``from_agent`` instead; the handoff
    span is then closed with the workflow, marked unfinished.
    """
    fields = _with_workflow({"from_agent": from_agent, "to_agent": to_agent}, workflow_id)
    started = time.perf_counter()
    signals.handoff_started.send(sender, **fields)
    try:
        yield Handoff(from_agent, to_agent, fields.get("workflow_id"))
    except Exception as error:
        signals.error_occurred.send(sender, agent=from_agent, error_type=type(error).__name__,
                                    exception=error,
                                    **_with_workflow({}, fields.get("workflow_id")))
        raise
    signals.handoff_completed.send(sender, **fields, duration_s=time.perf_counter() - started)


@contextmanager
def timed_scope(signal: str, *, sender: Any = None, workflow_id: str | None = None,
                **fields: Any) -> Iterator[None]:
    """Send ``signal`` with ``duration_s`` when the block exits (also on error)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        signals.BY_NAME[signal].signal.send(
            sender, **_with_workflow(dict(fields), workflow_id),
            duration_s=time.perf_counter() - started)


@contextmanager
def decision_scope(agent: str, decision_type: str, *, sender: Any = None,
                   workflow_id: str | None = None) -> Iterator[None]:
    """``decision_made`` with ``duration_s`` when the block exits (also on error).

    While tracing runs and one of its spans is current, the decision's span is the
    current span inside the block (its id chosen now, sent as ``span_context``), so
    spans other instrumentation starts in the block are its children.
    """
    fields = _with_workflow({"agent": agent, "decision_type": decision_type}, workflow_id)
    leaf = _live.open_leaf() if _live is not None else None
    if leaf is not None:
        fields["span_context"] = leaf[1]
    started = time.perf_counter()
    try:
        yield
    finally:
        duration = time.perf_counter() - started
        if leaf is not None:
            _live.leave(leaf[0])
        signals.decision_made.send(sender, **fields, duration_s=duration)


class TracedOrchestrator:
    """Mixin giving an orchestrator ``with self.workflow(...)``/``agent``/``handoff``/
    ``decision``/``context_refresh`` blocks; each sends the contract's signals with
    ``self`` as the sender."""

    def workflow(self, workflow_id: str, workflow_type: str | None = None,
                 **trace_fields: str) -> Any:
        return workflow_scope(workflow_id, workflow_type, sender=self, **trace_fields)

    def agent(self, agent: str, workflow_id: str | None = None, **trace_fields: str) -> Any:
        return agent_scope(agent, workflow_id, sender=self, **trace_fields)

    def handoff(self, from_agent: str, to_agent: str, workflow_id: str | None = None) -> Any:
        return handoff_scope(from_agent, to_agent, workflow_id, sender=self)

    def decision(self, agent: str, decision_type: str, workflow_id: str | None = None) -> Any:
        return decision_scope(agent, decision_type, sender=self, workflow_id=workflow_id)

    def context_refresh(self, agent: str, workflow_id: str | None = None) -> Any:
        return timed_scope("yolo.context_refreshed", sender=self, workflow_id=workflow_id,
                           agent=agent)


def _decorate(func: F, scope: Callable[[Any], Any]) -> F:
    """Run ``func`` (sync or async) inside ``scope(sender)``; sender is its first arg."""
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with scope(args[0] if args else None):
                return await func(*args, **kwargs)
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with scope(args[0] if args else None):
            return func(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def agent_step(agent: str) -> Callable[[F], F]:
    """Decorator: every call of the function is one activation of ``agent``."""
    return lambda func: _decorate(func, lambda sender: agent_scope(agent, sender=sender))


def workflow_step(workflow_type: str | None = None,
                  workflow_id: Callable[..., str] | None = None) -> Callable[[F], F]:
    """Decorator: every call is one workflow. ``workflow_id(*args, **kwargs)`` names
    it (default: a new ``wf-<uuid>`` per call)."""
    import uuid

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                wf = workflow_id(*args, **kwargs) if workflow_id else f"wf-{uuid.uuid4().hex}"
                with workflow_scope(wf, workflow_type, sender=args[0] if args else None):
                    return await func(*args, **kwargs)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            wf = workflow_id(*args, **kwargs) if workflow_id else f"wf-{uuid.uuid4().hex}"
            with workflow_scope(wf, workflow_type, sender=args[0] if args else None):
                return func(*args, **kwargs)
        return wrapper  # type: ignore[return-value]

    return decorate
