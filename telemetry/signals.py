"""The signal contract: the only thing an orchestrator codes against.

Signals live in blinker's default namespace, so an orchestrator needs nothing but
blinker to emit them::

    blinker.signal("yolo.handoff_completed").send(self, from_agent="pm", to_agent="dev",
                                                   duration_s=1.2)

This module exposes the same objects as attributes (``signals.handoff_completed``),
the contract as data (:data:`CONTRACT`), and :func:`timed`, which times a block and
sends the signal with ``duration_s`` filled in.

Every signal also accepts ``timestamp`` (epoch seconds, default now; accepted within
``limits.timestamp_window_s`` of now) and ``workflow_id`` (optional str). Unknown
fields are ignored, ``sender`` included: blinker passes the sender positionally.
"""

from __future__ import annotations

import inspect
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import blinker

from telemetry.timing import wrap_timed

MODES = ("active", "paused", "degraded", "stopped")


@dataclass(frozen=True)
class SignalSpec:
    """The fields a signal carries. Field names map to a kind checked on receipt:

    ``name`` a non-empty str; ``duration`` a finite number >= 0 (seconds);
    ``count`` an int >= 0; ``amount`` a finite number >= 0 (money: ``cost_usd``);
    ``mode`` one of :data:`MODES`; ``key`` any str of any length (``call_key``: only
    its hash is kept); ``exception`` a BaseException instance.
    """

    name: str
    required: dict[str, str]
    optional: dict[str, str]

    @property
    def signal(self) -> blinker.NamedSignal:
        return blinker.signal(self.name)


def _spec(name: str, optional: dict[str, str] | None = None, **required: str) -> SignalSpec:
    return SignalSpec(f"yolo.{name}", required, optional or {})


#: Fields every signal accepts besides its own (checked by the derived payload checks
#: of :func:`telemetry.validation.payload_check`).
COMMON_OPTIONAL = {"timestamp": "timestamp", "workflow_id": "name"}

CONTRACT: tuple[SignalSpec, ...] = (
    _spec("workflow_started", {"workflow_type": "name"}, workflow_id="name"),
    _spec("workflow_completed", workflow_id="name", duration_s="duration"),
    _spec("workflow_failed", workflow_id="name", duration_s="duration", error_type="name"),
    _spec("agent_activated", agent="name"),
    _spec("agent_deactivated", agent="name"),
    _spec("handoff_started", from_agent="name", to_agent="name"),
    # workflow_id, accepted by every signal, is named here because loop detection
    # reads it: the handler receives it after the required fields.
    _spec("handoff_completed", {"workflow_id": "name"},
          from_agent="name", to_agent="name", duration_s="duration"),
    _spec("decision_made", agent="name", decision_type="name", duration_s="duration"),
    _spec("error_occurred", {"exception": "exception"}, agent="name", error_type="name"),
    _spec("safety_blocked", agent="name", rule="name"),
    _spec("context_updated", agent="name", items="count", tokens="count"),
    _spec("context_refreshed", agent="name", duration_s="duration"),
    _spec("state_saved", duration_s="duration", size_bytes="count"),
    _spec("state_loaded", duration_s="duration", size_bytes="count"),
    _spec("mode_changed", mode="mode"),
    # Agent operations: LLM and tool calls (OpenTelemetry GenAI ``chat`` and
    # ``execute_tool``). A call_key is a fingerprint of a tool call's arguments chosen
    # by the caller, never the arguments; only its hash is kept.
    _spec("llm_called", {"provider": "name", "operation": "name",
                         "cached_input_tokens": "count", "cost_usd": "amount",
                         "error_type": "name"},
          agent="name", model="name", duration_s="duration", input_tokens="count",
          output_tokens="count"),
    _spec("tool_started", {"call_key": "key"}, agent="name", tool="name"),
    _spec("tool_completed", {"call_key": "key", "error_type": "name"},
          agent="name", tool="name", duration_s="duration"),
)

BY_NAME: dict[str, SignalSpec] = {spec.name: spec for spec in CONTRACT}


class YoloSignal(blinker.NamedSignal):
    """A blinker ``NamedSignal`` whose :meth:`send` takes a short path when exactly
    one strong receiver listens to every sender, which is how telemetry listens.

    blinker's general dispatch (sender ids, a generator, weak-reference and
    coroutine checks per receiver) costs about 1.5 us per send on the reference
    machine, as much as the aggregator's whole work for an event. With one strong,
    synchronous receiver connected to ``ANY`` none of that can change the outcome,
    so the short path calls it directly; every other case, including muting, goes
    through blinker's own ``send`` unchanged.

    A receiver may offer ``receive_fields(sender, fields)``: the short path then
    passes the keyword arguments as the one dict they already are instead of
    unpacking them into a second one. It may also offer ``send_for(signal)``, a
    function that does what ``send`` would (muting included) and calls nobody else:
    while the receiver is the only one, that function is the signal's ``send``
    (an attribute of the instance), so a send is one call, not two. Telemetry's
    receiver does (:mod:`telemetry.aggregation.receiver`): it queues most events
    there and then, which took about a tenth off its cost per event.
    """

    _sole: Callable[..., Any] | None = None
    _direct: Callable[[Any, dict[str, Any]], Any] | None = None

    def connect(self, receiver: Callable[..., Any], sender: Any = blinker.ANY,
                weak: bool = True) -> Callable[..., Any]:
        connected = super().connect(receiver, sender, weak)
        self._find_sole()
        return connected

    def disconnect(self, receiver: Callable[..., Any], sender: Any = blinker.ANY) -> None:
        super().disconnect(receiver, sender)
        self._find_sole()

    def _clear_state(self) -> None:
        super()._clear_state()
        self._find_sole()

    def send(self, sender: Any = None, /, *, _async_wrapper: Any = None,
             **kwargs: Any) -> list[tuple[Callable[..., Any], Any]]:
        # Every way a receiver comes or goes keeps _direct current: connect(),
        # disconnect(), _clear_state(); blinker removes only weak receivers by
        # itself, and a weak receiver never leaves _direct set.
        direct = self._direct
        if direct is not None and not self.is_muted:
            return [(self._sole, direct(sender, kwargs))]
        if not self.receivers:
            return []
        results = super().send(sender, _async_wrapper=_async_wrapper, **kwargs)
        if len(self.receivers) == 1 and self._direct is None:  # a weak one may have gone
            self._find_sole()
        return results

    def _find_sole(self) -> None:
        """Remember the receiver if it is the only one, strong, synchronous and
        connected to ``ANY``."""
        self._sole = self._direct = None
        self.__dict__.pop("send", None)
        if len(self.receivers) != 1:
            return
        (stored,) = self.receivers.values()
        if callable(stored) and not isinstance(stored, weakref.ref) and \
                not inspect.iscoroutinefunction(stored) and \
                list(self.receivers_for(blinker.ANY)) == [stored]:
            self._sole = stored
            self._direct = getattr(stored, "receive_fields", None) or _unpacking(stored)
            send_for = getattr(stored, "send_for", None)
            if send_for is not None:
                self.send = send_for(self)


def _unpacking(receiver: Callable[..., Any]) -> Callable[[Any, dict[str, Any]], Any]:
    def direct(sender: Any, fields: dict[str, Any]) -> Any:
        return receiver(sender, **fields)
    return direct


#: ``YOLO_TELEMETRY_FAST_SIGNALS=0`` leaves the contract signals plain blinker signals.
FAST_SIGNALS = os.environ.get("YOLO_TELEMETRY_FAST_SIGNALS", "1").strip() != "0"


def _yolo_signal(name: str) -> blinker.NamedSignal:
    """The signal ``name`` in blinker's default namespace, as a :class:`YoloSignal`.

    An orchestrator may have created the signal with ``blinker.signal`` before
    importing telemetry and holds that very object, so a plain ``NamedSignal``
    found there is upgraded in place by assigning its ``__class__`` (same object,
    same receivers; :class:`YoloSignal` adds no state blinker's does not have but
    two cached references, rebuilt here). It is the only way to give that object the
    short path without the orchestrator's help; without it, every event of such a
    signal costs a full blinker dispatch on top of telemetry's own work, about twice
    the per-event figure the benchmarks hold telemetry to. A signal of any other
    class is left alone and dispatched by blinker, and so is every signal when
    :data:`FAST_SIGNALS` is off.

    Needs blinker 1.8 or newer (``blinker.default_namespace``, ``Signal.is_muted``,
    a positional-only ``sender``); tested against the oldest and newest allowed.
    """
    namespace = blinker.default_namespace
    existing = namespace.get(name)
    if not FAST_SIGNALS:
        return existing if existing is not None else blinker.signal(name)
    if existing is None:
        return namespace.setdefault(name, YoloSignal(name))
    if type(existing) is blinker.NamedSignal:
        existing.__class__ = YoloSignal
        existing._find_sole()
    return existing


for _spec_ in CONTRACT:
    _yolo_signal(_spec_.name)

workflow_started = blinker.signal("yolo.workflow_started")
workflow_completed = blinker.signal("yolo.workflow_completed")
workflow_failed = blinker.signal("yolo.workflow_failed")
agent_activated = blinker.signal("yolo.agent_activated")
agent_deactivated = blinker.signal("yolo.agent_deactivated")
handoff_started = blinker.signal("yolo.handoff_started")
handoff_completed = blinker.signal("yolo.handoff_completed")
decision_made = blinker.signal("yolo.decision_made")
error_occurred = blinker.signal("yolo.error_occurred")
safety_blocked = blinker.signal("yolo.safety_blocked")
context_updated = blinker.signal("yolo.context_updated")
context_refreshed = blinker.signal("yolo.context_refreshed")
state_saved = blinker.signal("yolo.state_saved")
state_loaded = blinker.signal("yolo.state_loaded")
mode_changed = blinker.signal("yolo.mode_changed")
llm_called = blinker.signal("yolo.llm_called")
tool_started = blinker.signal("yolo.tool_started")
tool_completed = blinker.signal("yolo.tool_completed")

F = TypeVar("F", bound=Callable[..., Any])


class timed:
    """Time a block or a function and send ``signal`` with ``duration_s`` set.

    As a context manager the signal is sent when the block exits, also when it
    raises (the exception still propagates)::

        with timed("yolo.decision_made", agent="pm", decision_type="scope"):
            decide()

    As a decorator it times every call, sync or async::

        @timed(signals.state_saved, size_bytes=0)
        def save(): ...

    ``sender`` is what blinker passes as the sender (default: None).
    """

    def __init__(self, signal: str | blinker.Signal, sender: Any = None, **fields: Any) -> None:
        self.signal = blinker.signal(signal) if isinstance(signal, str) else signal
        self.sender = sender
        self.fields = fields
        self._started: float | None = None

    def __enter__(self) -> timed:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        started, self._started = self._started, None
        if started is not None:
            self._send(time.perf_counter() - started)

    def _send(self, duration_s: float) -> None:
        self.signal.send(self.sender, duration_s=duration_s, **self.fields)

    def __call__(self, func: F) -> F:
        return wrap_timed(func, self._send)
