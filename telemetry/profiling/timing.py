"""``telemetry.profiled``: time any block or function into one catalogue histogram.

Signals cover the orchestrator's own vocabulary (handoffs, decisions...). For the
rest (a tool call, a prompt render, a vector search) wrap the code::

    @telemetry.profiled("render_prompt")
    def render(...): ...

    async with telemetry.profiled("vector_search"):
        await index.query(...)

Each run adds one observation to ``yolo_operation_duration_seconds{operation}``
through the aggregator's direct path: one lock, one dict lookup on the cached route
table, one O(1) histogram update. The operation names share the aggregator's
per-metric series limit, so a name built from data ends in the overflow series
instead of growing memory. There is no per-name cell cache here on purpose: the
series' route table already is one, and it stays right when stale series are purged.

When no telemetry is running the wrapped code runs unchanged and nothing is
recorded; failures inside telemetry are counted, never raised into the caller.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from telemetry import catalogue as cat
from telemetry.timing import wrap_timed

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.profiling.slow import SlowOperations

log = logging.getLogger("telemetry.profiling")

F = TypeVar("F", bound=Callable[..., Any])

#: The ``with profiled(...)`` blocks open in this thread or asyncio task, innermost
#: first, as a linked list of (id of the profiled object, perf_counter at entry,
#: rest). A context variable, so one profiled object can be entered from several
#: threads or tasks at once; a linked list, so entering and leaving copy nothing.
_Open = tuple[int, float, "_Open | None"]
_open_blocks: contextvars.ContextVar[_Open | None] = contextvars.ContextVar(
    "yolo_telemetry_profiled", default=None)

_failure_logged = False


class _Route(NamedTuple):
    aggregator: Aggregator
    slow: SlowOperations | None


#: Where operations go: the most recently started Telemetry's aggregator (and its
#: slow-operation capture), set by the runtime while it runs; None records nothing.
_route: _Route | None = None


def route_to(aggregator: Aggregator, slow: SlowOperations | None = None) -> None:
    """Record every later operation into ``aggregator`` (the runtime calls this)."""
    global _route
    _route = _Route(aggregator, slow)


def unroute(aggregator: Aggregator | None = None) -> None:
    """Stop recording into ``aggregator`` (into anything, when None)."""
    global _route
    if aggregator is None or (_route is not None and _route.aggregator is aggregator):
        _route = None


def record_operation(name: str, seconds: float) -> None:
    """Record one operation of ``seconds`` into the running telemetry, if any."""
    route = _route
    if route is None:
        return
    try:
        route.aggregator.observe(cat.OPERATION_DURATION, (name,), seconds)
        if route.slow is not None:
            route.slow.on_profiled(name, seconds)
    except Exception:
        _count_failure(route.aggregator)


def _count_failure(aggregator: Aggregator) -> None:
    global _failure_logged
    with contextlib.suppress(Exception):
        aggregator.count_dropped("profiled", "exception")
    if not _failure_logged:
        _failure_logged = True
        log.exception("recording a profiled operation failed; further failures are only counted")


class profiled:
    """Time a block or every call of a function as operation ``name``.

    Works as a decorator on sync and async functions, and as a ``with`` or
    ``async with`` block; a block that raises is recorded too, and the exception
    propagates unchanged.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = str(name)

    # -- blocks -------------------------------------------------------------------

    def __enter__(self) -> profiled:
        _open_blocks.set((id(self), time.perf_counter(), _open_blocks.get()))
        return self

    def __exit__(self, *exc_info: object) -> None:
        ended = time.perf_counter()
        top = _open_blocks.get()
        me = id(self)
        if top is not None and top[0] == me:  # the usual case: properly nested
            _open_blocks.set(top[2])
            record_operation(self.name, ended - top[1])
            return
        # Left out of order (a generator suspended inside a block): unlink our entry.
        skipped = []
        node = top
        while node is not None and node[0] != me:
            skipped.append(node)
            node = node[2]
        if node is None:
            return  # never entered in this context: nothing to record
        rest = node[2]
        for entry in reversed(skipped):
            rest = (entry[0], entry[1], rest)
        _open_blocks.set(rest)
        record_operation(self.name, ended - node[1])

    async def __aenter__(self) -> profiled:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)

    # -- functions ----------------------------------------------------------------

    def __call__(self, func: F) -> F:
        name = self.name
        return wrap_timed(func, lambda seconds: record_operation(name, seconds))

    def __repr__(self) -> str:
        return f"profiled({self.name!r})"
