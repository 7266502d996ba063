"""What the signals that open and close a live context do when they are sent: send
handlers of :class:`telemetry.tracing.tracer.SignalTracer`, next to
:mod:`telemetry.tracing.handlers.events` (whose handlers run later, in order, in the
aggregator's batches).

A workflow's or an agent activation's span is made current on the thread or asyncio
task that sends its opening signal, there and then (:mod:`telemetry.tracing.live`),
so that what other instrumentation starts in between nests under it; its closing
signal puts back what was current. docs/tracing.md says exactly when the context is
set and cleared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from telemetry.tracing.handlers.calls import CallSignals
from telemetry.tracing.live import current_parent, enter, leave
from telemetry.tracing.spans.builder import remote_parent

if TYPE_CHECKING:
    from telemetry.tracing.spans.record import SpanStub


#: Signal name -> the name of its send handler (see LiveSignals.live_handlers).
LIVE_HANDLERS: dict[str, str] = {
    "yolo.workflow_started": "_open_workflow_now",
    "yolo.agent_activated": "_open_agent_now",
    "yolo.workflow_completed": "_leave_workflow_now",
    "yolo.workflow_failed": "_leave_workflow_now",
    "yolo.agent_deactivated": "_leave_agent_now",
}


class LiveSignals(CallSignals):
    """The send handlers; :class:`telemetry.tracing.handlers.events.SpanSignals` makes the
    workflow and agent spans they make current (``_workflow_span``, ``_agent_span``)."""

    def live_handlers(self) -> dict[str, Callable[[dict, float], None]]:
        """What the signals that open or close a live context do when they are sent, on
        the sending thread (:data:`telemetry.aggregation.followers.SendHandler`).

        An opening signal makes its span (ids, sampling, record) and makes it current
        there and then, and leaves both in the payload (:attr:`_opened_key`) for its handler
        in :meth:`handlers`, which puts the span in the open-span table in order with
        the events sent before it: those events never find it open, so the events
        waiting in the queue need not be recorded first. A closing signal puts back what
        was current; its span ends in order too. Spans made current are found at the
        next send by :attr:`_lives` (the table lags behind by the waiting events).
        """
        return self._bound(LIVE_HANDLERS)

    def _open_workflow_now(self, f: dict, ts: float) -> None:
        wf = self._names(f, "workflow_id")[0]
        span = self._workflow_span(f, wf, ts, current_parent)
        self._opened(f, ("w", wf), span)

    def _open_agent_now(self, f: dict, ts: float) -> None:
        agent, wf = self._names(f, "agent")
        if "traceparent" in f:
            parent = remote_parent(f) or self._sent_workflow(wf)
        else:
            parent = self._sent_workflow(wf)
        self._opened(f, ("a", wf, agent), self._agent_span(agent, wf, parent, ts))

    def _sent_workflow(self, wf: str | None) -> SpanStub | None:
        """The span of workflow ``wf`` as of the latest send: opened at a send, or in
        the table (opened before tracing followed the events)."""
        if wf is None:
            return None
        live = self._lives.get(("w", wf))
        if live is not None and live.open:
            return live.stub
        entry = self._workflow(wf)
        return entry.span if entry is not None else None

    def _opened(self, f: dict, key: tuple, span: SpanStub) -> None:
        """Make ``span`` current here, remember it under ``key`` for the closing send,
        and leave it for the event's handler."""
        live = enter(span, self)
        lives = self._lives
        lives.pop(key, None)
        if len(lives) >= self._open.max_open:  # closing signals that never came
            del lives[next(iter(lives))]
        lives[key] = live
        f[self._opened_key] = (span, live)

    def _leave_workflow_now(self, f: dict, ts: float) -> None:
        live = self._lives.pop(("w", self._names(f, "workflow_id")[0]), None)
        if live is not None:
            leave(live)

    def _leave_agent_now(self, f: dict, ts: float) -> None:
        agent, wf = self._names(f, "agent")
        live = self._lives.pop(("a", wf, agent), None)
        if live is None and wf is not None:
            live = self._lives.pop(("a", None, agent), None)
        if live is not None:
            leave(live)
