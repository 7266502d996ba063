"""The bounded table of open spans behind :class:`telemetry.tracing.tracer.SignalTracer`.

Workflows, agent activations and handoffs open with one signal and close with
another, possibly much later or never. The table holds them between the two, keyed
by what the signals carry:

* ``("w", workflow_id)`` a workflow,
* ``("a", workflow_id, agent)`` an agent activation (``workflow_id`` may be None),
* ``("h", workflow_id, from_agent, to_agent)`` a handoff.

It is bounded twice: ``max_open`` entries (opening one more ends the oldest) and a
TTL (an entry open longer is ended). Entries are kept in opening order, so both
checks look only at the oldest entry; the TTL check costs one comparison per event
until something is due. A span ended by the table is marked ``yolo.span.unfinished``,
ends at its last activity and is counted through ``on_unfinished(reason)``.

Not thread-safe on its own: the tracer holds its lock around every call.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telemetry.tracing.spans.record import SpanStub

UNFINISHED = "yolo.span.unfinished"

Key = tuple[Any, ...]


#: The latest time OTLP can carry (2**63 ns after the epoch, in 2262), in seconds.
LATEST_TS = 9_223_372_036.0


def ns(ts: float) -> int:
    """Epoch seconds to the nanoseconds OpenTelemetry timestamps are in.

    Clamped to what the wire format holds: a signal may carry any timestamp the
    contract accepts (0 to 2**53 s), and a start computed as ``timestamp -
    duration_s`` may fall before the epoch; one such span would make the encoder
    reject its whole batch.
    """
    return int(min(max(ts, 0.0), LATEST_TS) * 1e9)


class OpenSpan:
    """One open span and what expiry and correlation need to know about it."""

    __slots__ = ("agent", "key", "last_ts", "live", "opened", "span", "start_ns", "start_ts",
                 "workflow_id")

    def __init__(self, key: Key, span: SpanStub, workflow_id: str | None, agent: str | None,
                 opened: float, ts: float) -> None:
        self.key = key
        self.span = span
        self.workflow_id = workflow_id
        self.agent = agent
        self.opened = opened  # monotonic time, for the TTL
        self.start_ts = ts  # the signal's timestamp (epoch s)
        self.start_ns = int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts)
        self.last_ts = ts  # latest activity: where an unfinished span is ended
        #: The span as the current OpenTelemetry span (:mod:`telemetry.tracing.live`),
        #: made inert when the entry leaves the table, however it leaves.
        self.live: Any = None

    def touch(self, ts: float) -> None:
        """Note activity at ``ts``: an unfinished span is ended at its latest activity."""
        if ts > self.last_ts:
            self.last_ts = ts

    def end(self, ts: float) -> None:
        """End the span at ``ts``, never before it started."""
        end_ns = int(ts * 1e9) if 0.0 <= ts <= LATEST_TS else ns(ts)
        self.span.end(end_ns if end_ns > self.start_ns else self.start_ns)


class OpenSpans:
    """Open spans by key, with a per-workflow index of children and the latest
    activation of each agent name."""

    def __init__(self, max_open: int, ttl_s: float, clock: Callable[[], float],
                 on_unfinished: Callable[[str], None]) -> None:
        #: The most entries held at once (``tracing.max_open_spans``).
        self.max_open = max_open
        self._ttl = ttl_s
        self._clock = clock
        self._on_unfinished = on_unfinished
        self._open: OrderedDict[Key, OpenSpan] = OrderedDict()
        self._children: dict[str, dict[Key, None]] = {}
        self._latest_agent: dict[str, Key] = {}
        #: When the oldest entry expires; may be early after it closed normally, never
        #: late; infinite while the table is empty. Callers compare it with the clock
        #: before calling :meth:`expire_due`.
        self.next_expiry = math.inf
        #: ``get(key) -> OpenSpan | None``: the table's own lookup, called per event.
        self.get: Callable[[Key], OpenSpan | None] = self._open.get

    def __len__(self) -> int:
        return len(self._open)

    def latest_agent(self, agent: str) -> OpenSpan | None:
        """The most recently opened activation of ``agent``, in any workflow."""
        key = self._latest_agent.get(agent)
        return self._open.get(key) if key is not None else None

    def children(self, workflow_id: str | None) -> Iterator[OpenSpan]:
        """A workflow's open agent and handoff spans, newest first."""
        children = self._children.get(workflow_id, {}) if workflow_id is not None else {}
        return (self._open[key] for key in reversed(children))

    # -- opening and closing -----------------------------------------------------------

    def add(self, key: Key, span: SpanStub, workflow_id: str | None, agent: str | None,
            ts: float) -> OpenSpan:
        """Hold a newly started span. One already open under ``key`` is abandoned; the
        oldest entries go when the table is full."""
        table = self._open
        previous = table.pop(key, None)
        if previous is not None:
            self._unindex(previous)
            self.end_unfinished(previous, ts, "abandoned")
        while len(table) >= self.max_open:
            _, oldest = table.popitem(last=False)
            self._unindex(oldest)
            self.end_unfinished(oldest, oldest.last_ts, "abandoned")
        opened = self._clock()
        if not table:
            self.next_expiry = opened + self._ttl
        entry = table[key] = OpenSpan(key, span, workflow_id, agent, opened, ts)
        if workflow_id is not None and key[0] != "w":
            children = self._children.get(workflow_id)
            if children is None:
                children = self._children[workflow_id] = {}
            children[key] = None
        if agent is not None:
            self._latest_agent[agent] = key
        return entry

    def pop(self, key: Key) -> OpenSpan | None:
        """Take an entry out (its span is the caller's to end)."""
        entry = self._open.pop(key, None)
        if entry is not None:
            self._unindex(entry)
        return entry

    def abandon_children(self, workflow_id: str, ts: float) -> None:
        """End what a finished workflow left open (agents never deactivated...)."""
        for key in list(self._children.get(workflow_id, ())):
            entry = self.pop(key)
            if entry is not None:
                self.end_unfinished(entry, ts, "abandoned")

    def end_all(self, reason: str) -> None:
        while self._open:
            _, entry = self._open.popitem(last=False)
            self._unindex(entry)
            self.end_unfinished(entry, entry.last_ts, reason)

    def end_unfinished(self, entry: OpenSpan, end_ts: float, reason: str) -> None:
        entry.span.set_attribute(UNFINISHED, True)
        entry.end(end_ts)
        self._on_unfinished(reason)

    # -- expiry ------------------------------------------------------------------------

    def expire_due(self) -> None:
        """End entries open for longer than the TTL; cheap when none is due."""
        if not self._open:
            self.next_expiry = math.inf
            return
        now = self._clock()
        if now < self.next_expiry:
            return
        cutoff = now - self._ttl
        while self._open:
            entry = next(iter(self._open.values()))
            if entry.opened >= cutoff:
                self.next_expiry = entry.opened + self._ttl
                return
            self._open.popitem(last=False)
            self._unindex(entry)
            self.end_unfinished(entry, entry.last_ts, "abandoned")
        self.next_expiry = math.inf

    def _unindex(self, entry: OpenSpan) -> None:
        if entry.live is not None:
            entry.live.open = False
        wf, key = entry.workflow_id, entry.key
        if wf is not None and key[0] != "w":
            children = self._children.get(wf)
            if children is not None:
                children.pop(key, None)
                if not children:
                    del self._children[wf]
        agent = entry.agent
        if agent is not None and self._latest_agent.get(agent) is key:
            del self._latest_agent[agent]
