"""Slow-operation capture: what a thread was doing during an operation that took too long.

A handoff or decision signal arrives after the operation is over, so its stacks
must already have been sampled. A background thread therefore samples, at a low
rate (``debug.slow.sample_interval_s``, 20 per second by default), only the threads
that send signals (see :class:`~telemetry.profiling.stacks.SignalThreads`), into one
ring buffer per thread covering ``debug.slow.window_s``. When a watched operation
at least ``debug.slow.threshold_s`` long is reported, the samples of the reporting
thread within ``[end - duration, end]`` are frozen as a capture; the last
``debug.slow.max_captures`` are kept. For ``profiled`` blocks the start and end are
known exactly.

Costs are bounded by construction: the sampler's work grows with the number of
signal-sending threads (at most 64), not with the event rate; the per-event work is
a dict lookup and a comparison; a capture copies at most one window of samples and
happens at most ``debug.slow.max_per_minute`` times a minute (more are counted as
``yolo_telemetry_dropped_total{component="slow_capture",reason="rate_limited"}``).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from telemetry.aggregation.series import sanitize_label_value
from telemetry.config import SlowCaptureConfig
from telemetry.profiling.stacks import (
    Profile,
    SignalThreads,
    Stack,
    ThreadProfile,
    current_stacks,
    thread_names,
)

log = logging.getLogger("telemetry.profiling")

#: Watched signals: operation name and the fields that label a capture.
WATCHED_SIGNALS: dict[str, tuple[str, tuple[str, ...]]] = {
    "yolo.handoff_completed": ("handoff", ("from_agent", "to_agent")),
    "yolo.decision_made": ("decision", ("agent", "decision_type")),
    "yolo.context_refreshed": ("context_refresh", ("agent",)),
    "yolo.state_saved": ("state_save", ()),
    "yolo.state_loaded": ("state_load", ()),
    "yolo.workflow_completed": ("workflow", ()),
    "yolo.workflow_failed": ("workflow", ("error_type",)),
}

_MAX_LABEL_LENGTH = 128
_NO_SAMPLES = ("no samples: the thread was not sampled during the operation (it sent no "
               "signal before, or the reported duration is not wall time of this thread)")


@dataclass(frozen=True)
class SlowCapture:
    """One slow operation and the stack samples of the thread that reported it."""

    id: int
    operation: str
    labels: dict[str, str]
    duration_s: float
    ended_at: float  # epoch seconds
    profile: Profile

    def summary(self) -> dict[str, Any]:
        thread = self.profile.threads[0] if self.profile.threads else None
        return {
            "id": self.id,
            "operation": self.operation,
            "labels": self.labels,
            "duration_s": round(self.duration_s, 6),
            "ended_at": self.ended_at,
            "thread": thread.name if thread else None,
            "samples": self.profile.sample_count,
            "sampled_seconds": round(thread.seconds, 6) if thread else 0.0,
            "hot_functions": self.profile.hot_functions(),
            "path": f"/debug/slow/{self.id}",
            **({} if self.profile.sample_count else {"note": _NO_SAMPLES}),
        }


class RollingSampler:
    """Keeps the last ``window_s`` of stack samples of every signal-sending thread."""

    def __init__(self, threads: SignalThreads, interval_s: float, window_s: float) -> None:
        self.threads = threads
        self.interval_s = interval_s
        self.window_s = window_s
        self._maxlen = max(math.ceil(window_s / interval_s), 1)
        self._buffers: dict[int, deque[tuple[float, float, Stack]]] = {}
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: CPU time of the sampler thread, for the cost figures.
        self.busy_s = 0.0
        self.rounds = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="telemetry-slow-sampler",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample_once()
            except Exception:
                log.exception("the slow-operation sampler failed; it carries on")

    def sample_once(self) -> None:
        started = time.thread_time()
        now = time.time()
        watched = self.threads.idents()
        stacks = current_stacks(only=watched)
        with self._lock:
            for ident in [i for i in self._buffers if i not in stacks]:
                del self._buffers[ident]  # the thread ended
            for ident, stack in stacks.items():
                buffer = self._buffers.get(ident)
                if buffer is None:
                    buffer = self._buffers[ident] = deque(maxlen=self._maxlen)
                    if ident not in self._names:
                        self._names = thread_names()
                weight = now - buffer[-1][0] if buffer else self.interval_s
                buffer.append((now, min(weight, 2 * self.interval_s), stack))
        self.threads.forget(i for i in watched if i not in stacks)
        self.rounds += 1
        self.busy_s += time.thread_time() - started

    def window(self, ident: int, start: float, end: float) -> ThreadProfile:
        """The samples of thread ``ident`` taken between ``start`` and ``end`` (epoch)."""
        name = self._names.get(ident)
        if name is None:
            name = (threading.current_thread().name if ident == threading.get_ident()
                    else thread_names().get(ident, "thread"))
        profile = ThreadProfile(ident, name)
        with self._lock:
            buffer = self._buffers.get(ident)
            picked = []
            if buffer:
                for taken, weight, stack in reversed(buffer):
                    if taken < start:
                        break
                    if taken <= end:
                        picked.append((weight, stack))
        for weight, stack in reversed(picked):
            profile.stacks.append(stack)
            profile.weights.append(weight)
        return profile


class SlowOperations:
    """Watches operation durations and keeps captures of the slow ones."""

    def __init__(self, config: SlowCaptureConfig, threads: SignalThreads,
                 aggregator: Any) -> None:
        self.config = config
        self.threshold_s = config.threshold_s
        self.aggregator = aggregator
        self.threads = threads
        self.sampler = RollingSampler(threads, config.sample_interval_s, config.window_s)
        watched = set(config.operations)
        self._signals = {name: spec for name, spec in WATCHED_SIGNALS.items()
                         if spec[0] in watched}
        self._profiled = "profiled" in watched
        self._captures: deque[SlowCapture] = deque(maxlen=config.max_captures)
        self._recent: deque[float] = deque(maxlen=config.max_per_minute)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self) -> None:
        self.sampler.start()

    def stop(self) -> None:
        self.sampler.stop()

    # -- inputs ---------------------------------------------------------------------

    def on_event(self, signal_name: str, fields: dict[str, Any], timestamp: float) -> None:
        """Aggregator listener (the event is already validated): O(1) unless slow."""
        watched = self._signals.get(signal_name)
        if watched is None:
            return
        duration = fields["duration_s"]
        if duration < self.threshold_s:
            return
        operation, label_fields = watched
        labels = {key: fields[key] for key in label_fields}
        if fields.get("workflow_id") is not None:
            labels["workflow_id"] = fields["workflow_id"]
        self.capture(operation, labels, float(duration), timestamp)

    def on_profiled(self, name: str, seconds: float) -> None:
        """Called by ``profiled`` when a block ends; also marks the thread as watched."""
        self.threads.note()
        if self._profiled and seconds >= self.threshold_s:
            self.capture("profiled", {"operation": name}, seconds, time.time())

    # -- captures -------------------------------------------------------------------

    def capture(self, operation: str, labels: dict[str, Any], duration_s: float,
                ended_at: float, ident: int | None = None) -> SlowCapture | None:
        """Freeze the samples of thread ``ident`` (default: the caller) over the operation."""
        now = time.monotonic()
        with self._lock:
            if len(self._recent) == self._recent.maxlen and now - self._recent[0] < 60.0:
                rate_limited = True
            else:
                rate_limited = False
                self._recent.append(now)
                capture_id = next(self._ids)
        if rate_limited:
            self.aggregator.count_dropped("slow_capture", "rate_limited")
            return None
        ident = threading.get_ident() if ident is None else ident
        thread = self.sampler.window(ident, ended_at - duration_s, ended_at)
        clean = {key: sanitize_label_value(value, _MAX_LABEL_LENGTH)
                 for key, value in labels.items()}
        title = (f"slow {operation} " + " ".join(f"{k}={v}" for k, v in clean.items())
                 + f" ({duration_s:.3f}s)")
        profile = Profile(title, ended_at - duration_s, duration_s,
                          self.sampler.interval_s, [thread])
        capture = SlowCapture(capture_id, operation, clean, duration_s, ended_at, profile)
        with self._lock:
            self._captures.append(capture)
        return capture

    def captures(self) -> list[SlowCapture]:
        """The kept captures, newest first."""
        with self._lock:
            return list(reversed(self._captures))

    def get(self, capture_id: int) -> SlowCapture | None:
        with self._lock:
            return next((c for c in self._captures if c.id == capture_id), None)
