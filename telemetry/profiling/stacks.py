"""Stack samples of live threads, and the :class:`Profile` they add up to.

Why not pyinstrument's own profiler: it hooks the interpreter of the thread that
starts it (``setprofile``), so it cannot see an orchestrator thread that is already
running when ``/debug/profile`` is requested (multi-thread support is an open
upstream pull request). ``sys._current_frames()`` sees every thread at once, like
py-spy or Go's pprof: a sampler reads it on a fixed period and keeps only the code
objects of each stack (no frames, no locals), so a sample costs a few microseconds
per thread and nothing runs inside the sampled threads. pyinstrument is still used
to render HTML and text (see :mod:`telemetry.profiling.render`).
"""

from __future__ import annotations

import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import CodeType, FrameType

#: A call stack as code objects, outermost call first.
Stack = tuple[CodeType, ...]


def stack_of(frame: FrameType | None) -> Stack:
    """The code objects from ``frame`` up to its thread's entry point, root first."""
    codes = []
    while frame is not None:
        codes.append(frame.f_code)
        frame = frame.f_back
    codes.reverse()
    return tuple(codes)


def current_stacks(skip: set[int] | frozenset[int] = frozenset(),
                   only: Iterable[int] | None = None) -> dict[int, Stack]:
    """The stack of every live thread (or of those in ``only``), minus ``skip``.

    Frames are dropped before returning: holding them would keep their locals alive.
    """
    frames = sys._current_frames()
    if only is None:
        return {ident: stack_of(frame) for ident, frame in frames.items() if ident not in skip}
    return {ident: stack_of(frames[ident]) for ident in only
            if ident in frames and ident not in skip}


_STDLIB = tuple({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]})


def _is_stdlib(code: CodeType) -> bool:
    name = code.co_filename
    return name.startswith("<frozen") or (
        name.startswith(_STDLIB) and "site-packages" not in name)


def thread_names() -> dict[int, str]:
    return {thread.ident: thread.name for thread in threading.enumerate()
            if thread.ident is not None}


@dataclass
class ThreadProfile:
    """The samples of one thread, in time order."""

    ident: int
    name: str
    stacks: list[Stack] = field(default_factory=list)
    #: Seconds each sample stands for (the time since the previous sample).
    weights: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(self.weights)


@dataclass
class Profile:
    """A statistical profile: what each sampled thread was running, sample by sample."""

    title: str
    started_at: float  # epoch seconds
    duration_s: float
    interval_s: float
    threads: list[ThreadProfile]
    #: CPU seconds the whole process used meanwhile (0 when unknown).
    cpu_s: float = 0.0
    #: CPU seconds the sampling itself used: what the profile cost.
    sampler_cpu_s: float = 0.0

    @property
    def sample_count(self) -> int:
        return sum(len(thread.stacks) for thread in self.threads)

    def hot_functions(self, limit: int = 5) -> list[dict[str, object]]:
        """The innermost non-standard-library function of each sample, ranked by time.

        Skipping the standard library makes a thread parked in ``Condition.wait``
        show the code that waits, which is the useful part of a quick summary.
        """
        totals: dict[CodeType, float] = {}
        overall = 0.0
        for thread in self.threads:
            for stack, weight in zip(thread.stacks, thread.weights, strict=True):
                if stack:
                    code = next((c for c in reversed(stack) if not _is_stdlib(c)), stack[-1])
                    totals[code] = totals.get(code, 0.0) + weight
                overall += weight
        ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:limit]
        return [{"function": code.co_qualname, "file": code.co_filename,
                 "line": code.co_firstlineno, "share": round(seconds / overall, 4)}
                for code, seconds in ranked if overall]


def sample_process(
    duration_s: float,
    interval_s: float,
    *,
    stop: threading.Event,
    exclude: Iterable[int] = (),
    first: Callable[[], Iterable[int]] = tuple,
    only_first: bool = False,
    title: str = "yolo-telemetry profile",
) -> Profile:
    """Sample every thread but ``exclude`` (and the caller) for ``duration_s`` seconds.

    Runs in the calling thread; ``stop`` ends it early. Threads named by ``first()``
    (those that send signals: the orchestrator) come first in the result; with
    ``only_first`` they are the only ones sampled.
    """
    me = threading.get_ident()
    skip = {me, *exclude}
    by_thread: dict[int, ThreadProfile] = {}
    names = thread_names()
    started_at = time.time()
    cpu_started = time.process_time()
    own_cpu_started = time.thread_time()
    started = last = time.perf_counter()
    deadline = started + duration_s
    due = started
    while True:
        due += interval_s
        now = time.perf_counter()
        if now >= deadline or stop.wait(max(min(due, deadline) - now, 0.0)):
            break
        now = time.perf_counter()
        weight, last = now - last, now
        only = first() if only_first else None
        for ident, stack in current_stacks(skip, only).items():
            profile = by_thread.get(ident)
            if profile is None:
                if ident not in names:
                    names = thread_names()
                profile = by_thread[ident] = ThreadProfile(ident, names.get(ident, "thread"))
            profile.stacks.append(stack)
            profile.weights.append(weight)
        if due < now - interval_s:
            due = now  # fell behind (GIL contention): do not burst to catch up
    preferred = list(dict.fromkeys(first()))
    order = {ident: index for index, ident in enumerate(preferred)}
    threads = sorted(by_thread.values(),
                     key=lambda t: (order.get(t.ident, len(order)), t.name, t.ident))
    return Profile(title, started_at, time.perf_counter() - started, interval_s, threads,
                   cpu_s=time.process_time() - cpu_started,
                   sampler_cpu_s=time.thread_time() - own_cpu_started)


class SignalThreads:
    """Threads that have sent signals: the orchestrator's threads, as telemetry sees them.

    :meth:`note` runs on every event (an aggregator listener), so for a known thread
    it is a thread-id read and a dict membership test. At most ``max_threads`` are
    tracked, in the order they were first seen; when full, threads that ended are
    dropped (at most once a second), so thread pools that churn threads still work.
    """

    def __init__(self, max_threads: int = 64) -> None:
        self.max_threads = max_threads
        self._seen: dict[int, None] = {}
        self._pruned_at = -float("inf")

    def note(self) -> None:
        ident = threading.get_ident()
        if ident in self._seen:
            return
        if len(self._seen) >= self.max_threads and not self._prune():
            return
        self._seen[ident] = None

    def _prune(self) -> bool:
        now = time.monotonic()
        if now - self._pruned_at < 1.0:
            return False
        self._pruned_at = now
        live = sys._current_frames().keys()
        self.forget([ident for ident in self.idents() if ident not in live])
        return len(self._seen) < self.max_threads

    def idents(self) -> list[int]:
        """Thread ids that sent signals, first seen first."""
        return list(self._seen.copy())

    def forget(self, idents: Iterable[int]) -> None:
        for ident in idents:
            self._seen.pop(ident, None)
