"""Payload checks for incoming signals, derived from the contract.

:func:`payload_check` turns a :class:`~telemetry.signals.SignalSpec` into the one
function that checks a payload of that signal: each field the contract names is
checked by its kind (``name``, ``duration``, ``count``, ``amount``, ``mode``, ``key``,
``exception``),
optional fields only when present. A check returns the clean value or raises
:class:`InvalidEvent` with a reason of the form ``field:problem``
(``duration_s:negative``); the set of reasons is fixed by the contract, so it is safe
as a label value.

A clean value is always of the exact built-in type (``str``, ``float``, ``int``): a
subclass is read through the built-in type's own conversion before it is compared,
so a subclass whose comparisons or ``__str__`` lie cannot pass a check with a value
that is not what it claims (a negative duration reaching a histogram's sum).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from telemetry.signals import COMMON_OPTIONAL, MODES, SignalSpec

_MISSING = object()
#: Larger numbers are almost certainly corrupt and would lose precision as floats.
MAX_NUMBER = 2.0**53


class InvalidEvent(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def name(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key, _MISSING)
    if type(value) is str and value and not value.isspace():  # the common case, cheaply
        return value
    if value is _MISSING or value is None:
        raise InvalidEvent(f"{key}:missing")
    if not isinstance(value, str):
        raise InvalidEvent(f"{key}:wrong_type")
    value = str.__str__(value)  # the exact text of a str subclass, whatever it overrides
    if not value.strip():
        raise InvalidEvent(f"{key}:empty")
    return value


def _number(value: Any, key: str) -> float:
    """``value`` as an exact float, or the reason it is not a usable number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"{key}:wrong_type")
    if isinstance(value, int):
        value = int.__index__(value)  # an exact int, whatever a subclass overrides
        if abs(value) > MAX_NUMBER:
            raise InvalidEvent(f"{key}:out_of_range")
        value = float(value)
    else:
        value = float.__float__(value)  # an exact float: its comparisons tell the truth
    if not math.isfinite(value):
        raise InvalidEvent(f"{key}:not_finite")
    if value < 0:
        raise InvalidEvent(f"{key}:negative")
    if value > MAX_NUMBER:
        raise InvalidEvent(f"{key}:out_of_range")
    return value


def duration(fields: dict[str, Any], key: str) -> float:
    value = fields.get(key, _MISSING)
    if type(value) is float and 0.0 <= value < MAX_NUMBER:  # the common case, cheaply
        return value
    if value is _MISSING or value is None:
        raise InvalidEvent(f"{key}:missing")
    return _number(value, key)


def count(fields: dict[str, Any], key: str) -> int:
    value = fields.get(key, _MISSING)
    if type(value) is int and 0 <= value <= MAX_NUMBER:  # the common case, cheaply
        return value
    if value is _MISSING or value is None:
        raise InvalidEvent(f"{key}:missing")
    number = _number(value, key)
    if not number.is_integer():
        raise InvalidEvent(f"{key}:not_integer")
    return int(number)


#: A finite number >= 0 that need not be a float (``cost_usd=0`` is a cost): the
#: same check as a duration's, under the name the contract gives the kind.
amount = duration


def fingerprint(fields: dict[str, Any], key: str) -> int:
    """The hash of a str of any length (a ``call_key``): the text itself is never kept,
    so a 1 MB key costs one hash and no memory."""
    value = fields.get(key, _MISSING)
    if type(value) is str:
        return hash(value)
    if value is _MISSING or value is None:
        raise InvalidEvent(f"{key}:missing")
    if not isinstance(value, str):
        raise InvalidEvent(f"{key}:wrong_type")
    return hash(str.__str__(value))  # the exact text's hash, whatever a subclass overrides


def mode(fields: dict[str, Any], key: str) -> str:
    value = name(fields, key)
    if value not in MODES:
        raise InvalidEvent(f"{key}:unknown")
    return value


def exception(fields: dict[str, Any], key: str) -> BaseException | None:
    value = fields.get(key)
    if value is None or isinstance(value, BaseException):
        return value
    raise InvalidEvent(f"{key}:wrong_type")


def timestamp(fields: dict[str, Any], window_s: float) -> float | None:
    """The event's ``timestamp`` (epoch seconds) as an exact float, None when absent.

    Only timestamps within ``window_s`` of now are accepted: one from the far future
    or past is corrupt, and an activation stamped 2**53 s would add that much to
    ``yolo_agent_active_seconds_total`` when the agent is deactivated.
    """
    value = fields.get("timestamp")
    if value is None:
        return None
    if type(value) is not float or not math.isfinite(value):
        value = _number(value, "timestamp")
    if not -window_s <= value - time.time() <= window_s:
        raise InvalidEvent("timestamp:out_of_range")
    return value


#: Check of each field kind of :class:`~telemetry.signals.SignalSpec` (the timestamp
#: is checked by :func:`timestamp`, which needs the accepted window).
KIND_CHECKS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "name": name, "duration": duration, "count": count, "amount": amount, "mode": mode,
    "key": fingerprint, "exception": exception,
}

#: ``check(fields) -> clean values of the required fields, then of the optional ones
#: (None when absent), in contract order``.
PayloadCheck = Callable[[dict[str, Any]], list]


def payload_check(spec: SignalSpec) -> PayloadCheck:
    """The check of a ``spec`` payload's own fields: its optional fields when present,
    then every required one. The fields every signal accepts (:data:`COMMON_OPTIONAL`:
    ``workflow_id`` with :func:`name`, ``timestamp`` with :func:`timestamp`) are checked
    by the aggregator's receiver for every signal, before this; a spec that names one
    among its optional fields (a handler reads it) gets its clean value too.

    Returns the clean required values in the order the contract lists them, then the
    clean optional ones (None when absent), which is the order the signal's handler
    unpacks them in.
    """
    optional_checks = tuple((key, KIND_CHECKS[kind]) for key, kind in spec.optional.items()
                            if key not in spec.required
                            and COMMON_OPTIONAL.get(key) != "timestamp")
    required_checks = tuple((key, KIND_CHECKS[kind]) for key, kind in spec.required.items())

    def check(fields: dict[str, Any]) -> list:
        optional = []
        for key, check_kind in optional_checks:
            optional.append(None if fields.get(key) is None else check_kind(fields, key))
        values = []  # a loop, not a comprehension: half the cost on Python 3.11
        for key, check_kind in required_checks:
            values.append(check_kind(fields, key))
        values += optional
        return values

    def check_required(fields: dict[str, Any]) -> list:  # no optional fields
        values = []
        for key, check_kind in required_checks:
            values.append(check_kind(fields, key))
        return values

    if not optional_checks:
        check = check_required

    check.__name__ = f"check_{spec.name.replace('.', '_')}"
    return check
