"""Timing a function, sync or async, shared by ``signals.timed`` and ``profiled``."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def wrap_timed(func: F, record: Callable[[float], None]) -> F:
    """``func`` that reports each call's duration in seconds to ``record``.

    The duration is reported also when the call raises; the exception propagates.
    Coroutine functions stay coroutine functions and are timed until they finish.
    """
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await func(*args, **kwargs)
            finally:
                record(time.perf_counter() - started)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            record(time.perf_counter() - started)

    return wrapper  # type: ignore[return-value]
