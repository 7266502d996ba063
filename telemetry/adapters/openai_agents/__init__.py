"""OpenAI Agents SDK adapter: the SDK's traces and spans become our signals.

``instrument()`` adds one :class:`TelemetryProcessor` with ``agents.add_trace_processor``
next to the processors already registered (the user's, the SDK's own exporter), so
every run in the process is seen; ``RunHooks`` would have to be passed to each
``Runner.run``. Traces become workflows, agent spans agent activations, handoff,
guardrail (triggered), function and model (generation, response) spans handoffs,
safety blocks, tool calls and LLM calls, and span errors errors; a turn's usage is an
LLM call when no model span of the turn reported one (``ScriptedModel``, custom
models). docs/adapters/openai_agents.md has the table and what is not mapped.

The workflow id is the SDK's trace id, so our spans group as the SDK's trace does.
Only names cross over: agent, tool, guardrail and model names, and error types from a
fixed table. Inputs, outputs and error messages stay in the SDK's span data.
"""

from __future__ import annotations

import threading
from typing import Any

from agents.tracing import add_trace_processor, get_trace_provider
from agents.tracing import set_trace_processors as _set_trace_processors

from telemetry.adapters.base import AdapterEmitter, Instrumentation
from telemetry.adapters.openai_agents.processor import (
    FRAMEWORK,
    MAX_SPANS_PER_TRACE,
    MAX_TRACES,
    TelemetryProcessor,
)

__all__ = ["FRAMEWORK", "MAX_SPANS_PER_TRACE", "MAX_TRACES", "TelemetryProcessor", "instrument"]

# -- instrument / uninstrument ----------------------------------------------------------

_lock = threading.Lock()
_current: Instrumentation | None = None


def instrument(**options: Any) -> Instrumentation:
    """Add our processor to the SDK's trace provider and return its handle; the
    processors already registered stay. Calling it again while instrumented returns
    the same handle. Options: ``sender`` (what blinker passes as the sender)."""
    global _current
    with _lock:
        if _current is not None and _current.active:
            processor = _current.processor  # type: ignore[attr-defined]
            if _registered() is not None and processor not in _registered():
                add_trace_processor(processor)  # set_trace_processors() dropped it
            return _current
        processor = TelemetryProcessor(AdapterEmitter(FRAMEWORK, options.get("sender")))
        add_trace_processor(processor)
        _current = Instrumentation(FRAMEWORK, lambda: _remove(processor))
        _current.processor = processor  # type: ignore[attr-defined]
        return _current


def _registered() -> tuple | None:
    """The processors the SDK's provider holds (None if it does not say)."""
    multi = getattr(get_trace_provider(), "_multi_processor", None)
    registered = getattr(multi, "_processors", None)
    return registered if isinstance(registered, tuple) else None


def _remove(processor: TelemetryProcessor) -> None:
    """Take our processor out, leaving every other one registered in its place."""
    processor.enabled = False  # inert at once, even if it cannot be taken out
    processor.shutdown()
    registered = _registered()
    if registered is not None and processor in registered:
        _set_trace_processors([p for p in registered if p is not processor])
