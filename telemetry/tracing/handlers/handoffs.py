"""What handoff and state signals do to spans: handlers of
:class:`telemetry.tracing.tracer.SignalTracer`, next to :mod:`telemetry.tracing.handlers.events`.

A handoff is a span from ``handoff_started`` to ``handoff_completed`` (or made from
``duration_s`` alone when the start was not seen), under the workflow span, else the
sending agent's span. State saves and loads are leaves under the workflow span:
``state_saved`` names no agent, and guessing one would be wrong when agents run
concurrently.
"""

from __future__ import annotations

from typing import Any

from telemetry.tracing.handlers.state import TracerState
from telemetry.tracing.spans.attributes import (
    CONVERSATION_ID,
    FROM_AGENT,
    HANDOFF_SOURCE,
    HANDOFF_TARGET,
    STATE_SIZE,
    TO_AGENT,
    Parent,
    start_ns,
)
from telemetry.tracing.spans.table import LATEST_TS, ns


class HandoffSignals(TracerState):
    """Handoff and state handlers, on the tracer's state and correlation
    (:class:`telemetry.tracing.handlers.state.TracerState`)."""

    # -- handoffs -----------------------------------------------------------

    def _handoff_names(self, f: dict) -> tuple[str, str, str | None]:
        texts = self._texts
        source, target, wf = f["from_agent"], f["to_agent"], f.get("workflow_id")
        source = texts.get(source) or self._learn(source)
        target = texts.get(target) or self._learn(target)
        if wf is not None:
            wf = texts.get(wf) or self._learn(wf)
        return source, target, wf

    def _handoff_parent(self, f: dict, ts: float, source: str, wf: str | None) -> Parent:
        """A handoff's parent: traceparent, workflow span, the sending agent's span."""
        return self._scope(f, self._workflow(wf) or self._agent(wf, source), ts)

    @staticmethod
    def _handoff_attributes(source: str, target: str, wf: str | None) -> dict:
        if wf is not None:
            return {FROM_AGENT: source, TO_AGENT: target, HANDOFF_SOURCE: source,
                    HANDOFF_TARGET: target, CONVERSATION_ID: wf}
        return {FROM_AGENT: source, TO_AGENT: target, HANDOFF_SOURCE: source,
                HANDOFF_TARGET: target}

    def _handoff_started(self, f: dict, ts: float) -> None:
        source, target, wf = self._handoff_names(f)
        # the parent as _handoff_parent finds it, inline for the common case: no
        # traceparent, the workflow span open
        entry = (self._open.get(("w", wf)) if wf is not None and "traceparent" not in f
                 else None)
        if entry is not None:
            parent = entry.span
            entry.touch(ts)
        else:
            parent = self._handoff_parent(f, ts, source, wf)[0]
        if parent is not None and not parent.sampled and self._inherit:
            span = parent  # unsampled subtree: no new span
        else:
            names = self._handoff_span_names
            name = names.get((source, target)) or self._span_name(
                names, (source, target), f"handoff {source} -> {target}")
            span = self._tracer.start_span(
                name, parent,
                self._handoff_attributes(source, target, wf),
                int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts))
        self._open.add(("h", wf, source, target), span, wf, None, ts)

    def _handoff_completed(self, f: dict, ts: float) -> None:
        source, target, wf = self._handoff_names(f)
        entry = self._open.pop(("h", wf, source, target))
        if entry is not None:
            end_ns = int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts)
            entry.span.end(end_ns if end_ns > entry.start_ns else entry.start_ns)
            return
        parent, floor = self._handoff_parent(f, ts, source, wf)
        if self._pruned(parent):
            return
        self._tracer.leaf(f"handoff {source} -> {target}", parent,
                          self._handoff_attributes(source, target, wf),
                          start_ns(ts - f["duration_s"], floor), ns(ts))

    # -- state ---------------------------------------------------------------------

    def _state(self, name: str, f: dict, ts: float) -> None:
        wf = f.get("workflow_id")
        if wf is not None:
            wf = self._texts.get(wf) or self._learn(wf)
            entry = None if "traceparent" in f else self._open.get(("w", wf))
        else:
            entry = None
        if entry is not None:
            parent, floor = entry.span, entry.start_ts
            entry.touch(ts)
        else:
            parent, floor = self._scope(f, self._workflow(wf), ts)
        if parent is not None and not parent.sampled and self._inherit:
            return
        if wf is not None:
            attributes: dict[str, Any] = {STATE_SIZE: f["size_bytes"], CONVERSATION_ID: wf}
        else:
            attributes = {STATE_SIZE: f["size_bytes"]}
        start = ts - f["duration_s"]  # start_ns, inline
        if start < floor:
            start = floor
        self._tracer.leaf(name, parent, attributes,
                          int(start * 1e9) if 0.0 <= start <= LATEST_TS else ns(start),
                          int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts))

    def _state_saved(self, f: dict, ts: float) -> None:
        self._state("state_save", f, ts)

    def _state_loaded(self, f: dict, ts: float) -> None:
        self._state("state_load", f, ts)
