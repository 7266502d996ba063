"""What every span handler works on: the tracer's state, and how a signal's names are
made safe and its parent span found.

The handlers come in one line of classes, each adding those of one module (of this
package, but the last)::

    TracerState      the state and the correlation below (state, this module)
    HandoffSignals   handoffs, state saves and loads (handoffs)
    CallSignals      LLM and tool calls, loop and repeat events (calls)
    LiveSignals      what opening and closing signals do when sent (live_signals)
    SpanSignals      workflows, agents, decisions, instants (events)
    SignalTracer     wiring, reads, live changes (telemetry.tracing.tracer)

:class:`~telemetry.tracing.tracer.SignalTracer` sets every field when it is made.
In a compiled build each class is a C structure (``state.pxd`` and the ``.pxd``
beside each module): the fields are typed, and a handler reads them, the open-span
table's entries and the spans' ids without a lookup. The pure-Python build ignores
the declarations and behaves the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from telemetry.aggregation.series import sanitize_label_value
from telemetry.tracing.spans.attributes import NO_PARENT, Parent
from telemetry.tracing.spans.builder import remote_parent
from telemetry.tracing.spans.table import OpenSpan, OpenSpans, ns

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.aggregation.handlers.operations import CallRuns, HandoffWindows
    from telemetry.aggregation.reentry import EventGuard
    from telemetry.tracing.spans.builder import SpanBuilder
    from telemetry.tracing.spans.record import SpanStub

#: Distinct names remembered as safe (or with their safe form); emptied when full.
TEXT_CACHE_SIZE = 4096


class TracerState:
    """The tracer's state, read by every handler (see the module doc)."""

    #: Makes the spans (the provider's sampler, ids, limits and processors).
    _tracer: SpanBuilder
    _aggregator: Aggregator
    _guard: EventGuard
    _clock: Callable[[], float]
    #: The open workflow, agent and handoff spans.
    _open: OpenSpans
    #: Raw name -> its safe form (itself when already safe); see :meth:`_learn`.
    _texts: dict[str, str]
    _max_text: int
    #: Span names by their varying part (decision type, agent, (from, to), (operation,
    #: model), tool): one string per distinct name, reused, so the encoder finds it
    #: hashed and cached.
    _decision_names: dict[str, str]
    _agent_names: dict[str, str]
    _handoff_span_names: dict[tuple[str, str], str]
    _call_names: dict[tuple[str, str], str]
    _tool_names: dict[str, str]
    #: Whether exception messages and stack traces may be kept (``capture_content``).
    _capture: bool
    #: Whether open workflows and agents become the current OpenTelemetry span.
    _live: bool
    #: With a parent-based sampler a child of an unsampled span is unsampled too, so
    #: it is not made at all.
    _inherit: bool
    #: The live spans opened at a send and not closed at one, by table key.
    _lives: dict[tuple, Any]
    #: The payload key under which an opening signal's send handler leaves the span it
    #: made and made current, (span, live span), for this tracer's handler of the signal.
    _opened_key: str
    #: The tracer's own loop windows and repeat runs, with the aggregator's settings
    #: (:mod:`telemetry.tracing.handlers.calls`), and the run length that makes a repeat.
    _loops: HandoffWindows
    _runs: CallRuns
    _repeat_threshold: int
    _attached: bool
    _feeding: Any
    #: What the aggregator reads (:class:`telemetry.aggregation.followers.Follower`).
    send_handlers: dict[str, Callable[[dict, float], None]]
    follower_handlers: dict[str, Callable[[dict, float], None]]
    wait_limit: int

    def _bound(self, names: Mapping[str, str]) -> dict[str, Callable[[dict, float], None]]:
        """Signal name -> this tracer's handler, from a table of signal name -> method
        name. Found by name, so the handlers a compiled build calls from C are bound
        as Python methods too."""
        return {signal: getattr(self, method) for signal, method in names.items()}

    # -- names -------------------------------------------------------------------------

    def _learn(self, value: Any) -> Any:
        """``value`` made safe for span names and attributes, remembered for next time.

        Names reach spans as they are when short, printable ASCII; others are made
        safe like label values: a lone surrogate (what ``os.fsdecode`` makes of
        undecodable bytes) cannot be encoded and would cost the whole batch, and
        control characters and long names are no better in a span than in a label.
        Handlers look a name up in the cache first (``texts.get(v) or learn(v)``), so
        each distinct name is checked once. Names far longer than the limit are not
        kept: the cache holds at most a few megabytes.
        """
        if type(value) is not str:
            return value
        limit = self._max_text
        if len(value) <= limit and value.isascii() and value.isprintable():
            clean = value
        else:
            clean = sanitize_label_value(value, limit)
        if len(value) <= 2 * limit:
            texts = self._texts
            if len(texts) >= TEXT_CACHE_SIZE:
                texts.clear()
            texts[value] = clean
        return clean

    @staticmethod
    def _span_name(names: dict[Any, str], key: Any, name: str) -> str:
        """Remember ``name`` under ``key`` in ``names`` (emptied when full)."""
        if len(names) >= TEXT_CACHE_SIZE:
            names.clear()
        names[key] = name
        return name

    def _names(self, f: dict, key: str) -> tuple[str, str | None]:
        """The safe ``f[key]`` and workflow id (None when the signal has none)."""
        texts, name, wf = self._texts, f[key], f.get("workflow_id")
        name = texts.get(name) or self._learn(name)
        if wf is not None:
            wf = texts.get(wf) or self._learn(wf)
        return name, wf

    # -- spans -------------------------------------------------------------------------

    def _start(self, name: str, parent: SpanStub | None, attributes: dict,
               ts: float) -> SpanStub:
        if parent is not None and not parent.sampled and self._inherit:
            return parent  # unsampled subtree: no new span, no attributes
        return self._tracer.start_span(name, parent, attributes, ns(ts))

    def _pruned(self, parent: SpanStub | None) -> bool:
        """Whether a child of ``parent`` is not made at all (an unsampled subtree)."""
        return parent is not None and not parent.sampled and self._inherit

    # -- correlation -----------------------------------------------------------------

    def _workflow(self, workflow_id: str | None) -> OpenSpan | None:
        return self._open.get(("w", workflow_id)) if workflow_id is not None else None

    def _agent(self, workflow_id: str | None, agent: str) -> OpenSpan | None:
        """The agent's open span: in this workflow, else one opened without a workflow;
        without a workflow, the agent's latest activation in any."""
        get = self._open.get
        entry = get(("a", workflow_id, agent))
        if entry is None:
            if workflow_id is not None:
                entry = get(("a", None, agent))
            else:
                entry = self._open.latest_agent(agent)
        return entry

    def _scope(self, f: dict, entry: OpenSpan | None, ts: float) -> Parent:
        """``entry`` as a parent (its last activity moved to ``ts``), unless a
        ``traceparent`` field names one."""
        if "traceparent" in f:
            remote = remote_parent(f)
            if remote is not None:
                return remote, 0.0
        if entry is None:
            return NO_PARENT
        entry.touch(ts)
        return entry.span, entry.start_ts

    def _agent_scope(self, f: dict, wf: str | None, agent: str, ts: float) -> Parent:
        """Parent of an agent's own work: traceparent, agent span, workflow span."""
        if "traceparent" in f:
            remote = remote_parent(f)
            if remote is not None:
                return remote, 0.0
        return self._scope(f, self._agent(wf, agent) or self._workflow(wf), ts)
