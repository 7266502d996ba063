"""Payload checks for incoming signals.

Each check returns the clean value or raises :class:`InvalidEvent` with a reason of
the form ``field:problem`` (``duration_s:negative``). The set of reasons is fixed by
the contract, so it is safe as a label value.
"""

from __future__ import annotations

import math
from typing import Any

from telemetry.signals import MODES

_MISSING = object()
#: Larger numbers are almost certainly corrupt and would lose precision as floats.
MAX_NUMBER = 2.0**53


class InvalidEvent(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def name(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key, _MISSING)
    if type(value) is str and value and not value.isspace():
        return value
    if value is _MISSING or value is None:
        raise InvalidEvent(f"{key}:missing")
    if not isinstance(value, str):
        raise InvalidEvent(f"{key}:wrong_type")
    if not value.strip():
        raise InvalidEvent(f"{key}:empty")
    return str(value)


def optional_name(fields: dict[str, Any], key: str) -> str | None:
    if fields.get(key) is None:
        return None
    return name(fields, key)


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"{key}:wrong_type")
    if isinstance(value, int):
        if abs(value) > MAX_NUMBER:
            raise InvalidEvent(f"{key}:out_of_range")
        value = float(value)
    if not math.isfinite(value):
        raise InvalidEvent(f"{key}:not_finite")
    if value < 0:
        raise InvalidEvent(f"{key}:negative")
    if value > MAX_NUMBER:
        raise InvalidEvent(f"{key}:out_of_range")
    return value


def duration(fields: dict[str, Any], key: str = "duration_s") -> float:
    value = fields.get(key, _MISSING)
    if type(value) is float and 0.0 <= value < MAX_NUMBER:  # the common case, checked cheaply
        return value
    if value is _MISSING or value is None:
        raise InvalidEvent(f"{key}:missing")
    return _number(value, key)


def count(fields: dict[str, Any], key: str) -> int:
    value = fields.get(key, _MISSING)
    if type(value) is int and 0 <= value <= MAX_NUMBER:
        return value
    if value is _MISSING or value is None:
        raise InvalidEvent(f"{key}:missing")
    number = _number(value, key)
    if not number.is_integer():
        raise InvalidEvent(f"{key}:not_integer")
    return int(number)


def timestamp(fields: dict[str, Any], default: float) -> float:
    value = fields.get("timestamp")
    if value is None:
        return default
    return _number(value, "timestamp")


def mode(fields: dict[str, Any]) -> str:
    value = name(fields, "mode")
    if value not in MODES:
        raise InvalidEvent("mode:unknown")
    return value


def exception(fields: dict[str, Any]) -> BaseException | None:
    value = fields.get("exception")
    if value is None or isinstance(value, BaseException):
        return value
    raise InvalidEvent("exception:wrong_type")
