"""Shared pieces of the reliability tests: a timed load generator, probes, figures.

The fault, load and shutdown tests all need to know how long the orchestrator's own
``send`` took while something was broken, how big the bounded buffers got, and to
print the numbers they measured (run pytest with ``-s`` to see the ``FIGURES`` lines;
set ``YOLO_TELEMETRY_FIGURES=path`` to also append them to a JSON-lines file).
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psutil

from telemetry import signals
from telemetry.cli.simulator import ReferenceOrchestrator, SimulationStats

#: A signal must never take longer than this to send, whatever a backend does. An
#: exporter blocking the sender would take at least its timeout (hundreds of ms), while
#: a healthy send takes microseconds; 50 ms leaves room for GIL hand-offs and GC pauses
#: on a loaded 2-core machine.
MAX_SEND_S = 0.050
#: CPython hands the GIL to waiting threads in no fixed order, so on a saturated 2-core
#: machine a thread now and then waits several 5 ms switch intervals in a row: among
#: hundreds of thousands of sends a handful may pass MAX_SEND_S (65 ms seen once in a
#: few runs) without telemetry holding them. A send held by telemetry looks different:
#: an exporter's I/O lasts its timeout (0.5 s in these tests) and every send made
#: meanwhile waits too, so a few outliers are allowed and none may reach BLOCKED_S.
MAX_OUTLIERS = 3
BLOCKED_S = 0.25

class GcPauses:
    """Time the interpreter spends in the cyclic garbage collector, from any thread.

    A collection stops every thread (it holds the GIL), so a send that overlaps one
    takes as long as the collection whatever telemetry does: a full collection of a
    test process's heap takes 20-150 ms on a 2-core machine. Sends are judged on their
    time minus the collections that ran meanwhile; the raw figures are reported too.
    """

    def __init__(self) -> None:
        self.total_s = 0.0
        self.max_s = 0.0
        self.count = 0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.total_s += pause
            self.count += 1
            self.max_s = max(self.max_s, pause)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)


#: /health thresholds no agent's context reaches, so exporters alone decide the status
#: (the reference orchestrator's contexts grow past the default warning level).
EXPORTERS_DECIDE_HEALTH = {"context_tokens_warning": 10**9, "context_tokens_critical": 2 * 10**9}

#: Spans the tracer makes per signal of the reference orchestrator (docs/tracing.md).
SPAN_SIGNALS = ("workflow_started", "agent_activated", "decision_made", "handoff_completed",
                "context_refreshed", "state_saved", "state_loaded", "llm_called",
                "tool_completed")

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Latency:
    """Send times of one phase of a test."""

    count: int = 0
    total_s: float = 0.0
    #: Longest send, garbage collection included.
    raw_max_s: float = 0.0
    #: Longest send once the collector's pauses during it are taken out: what
    #: telemetry itself made the sender wait.
    max_s: float = 0.0
    over_10ms: int = 0
    over_limit: int = 0

    def add(self, seconds: float, in_gc: float) -> None:
        self.count += 1
        self.total_s += seconds
        own = seconds - in_gc
        self.raw_max_s = max(self.raw_max_s, seconds)
        self.max_s = max(self.max_s, own)
        if own > 0.010:
            self.over_10ms += 1
        if own > MAX_SEND_S:
            self.over_limit += 1

    def assert_bounded(self, what: str = "") -> None:
        """No send waited on telemetry (see MAX_SEND_S and MAX_OUTLIERS)."""
        assert self.over_limit <= MAX_OUTLIERS and self.max_s < BLOCKED_S, (
            what, self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        mean_us = self.total_s / self.count * 1e6 if self.count else 0.0
        return {"events": self.count, "max_ms": round(self.max_s * 1000, 2),
                "max_ms_with_gc": round(self.raw_max_s * 1000, 2),
                "mean_us": round(mean_us, 1), "over_10ms": self.over_10ms,
                "over_limit": self.over_limit}


class TimedOrchestrator(ReferenceOrchestrator):
    """The reference orchestrator, timing each ``send`` by the phase the test is in.

    Only the send itself is timed (not the pacing wait), so the figure is what a real
    orchestrator would feel. The test thread changes :attr:`phase` and
    ``events_per_s`` while this one runs.
    """

    def __init__(self, seed: int, **knobs: Any) -> None:
        super().__init__(seed=seed, **knobs)
        self.phases: dict[str, Latency] = {}
        self.phase = "start"
        self.failures: list[BaseException] = []
        self.gc = GcPauses()

    def emit(self, signal_name: str, **fields: object) -> None:
        self._pace()
        gc_before = self.gc.total_s
        started = time.perf_counter()
        getattr(signals, signal_name).send(self, **fields)
        elapsed = time.perf_counter() - started
        self.phases.setdefault(self.phase, Latency()).add(elapsed, self.gc.total_s - gc_before)
        self.stats.events += 1
        counts = self.stats.counts_by_signal
        counts[signal_name] = counts.get(signal_name, 0) + 1

    def latency(self, phase: str) -> Latency:
        return self.phases.get(phase, Latency())

    @contextmanager
    def running(self) -> Iterator[TimedOrchestrator]:
        """Run workflows on a thread until the block ends; re-raise what the sender saw."""

        def work() -> None:
            try:
                self.run()
            except BaseException as error:  # the test fails on anything reaching the sender
                self.failures.append(error)

        thread = threading.Thread(target=work, name="timed-orchestrator", daemon=True)
        with self.gc:
            thread.start()
            try:
                yield self
            finally:
                self.stop()
                thread.join(30)
        assert not thread.is_alive(), "the orchestrator thread did not finish: a deadlock?"
        assert not self.failures, f"the orchestrator saw {self.failures[0]!r}"


def expected_spans(stats: SimulationStats) -> int:
    """Spans the tracer creates for what the reference orchestrator sent."""
    return sum(stats.counts_by_signal.get(name, 0) for name in SPAN_SIGNALS)


def get_json(url: str, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def get_text(url: str, timeout: float = 10.0) -> str:
    with _NO_PROXY.open(url, timeout=timeout) as response:
        return response.read().decode()


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def record(name: str, **figures: Any) -> None:
    """Print the figures a test measured (and append them to $YOLO_TELEMETRY_FIGURES)."""
    line = json.dumps({"test": name, **figures}, default=str)
    print(f"\nFIGURES {line}")
    path = os.environ.get("YOLO_TELEMETRY_FIGURES")
    if path:
        with open(path, "a") as file:
            file.write(line + "\n")


class Sampler:
    """Polls a few gauges on a thread (queue sizes, RSS) and keeps their maxima."""

    def __init__(self, interval_s: float = 0.02, **probes: Any) -> None:
        self.probes = probes
        self.maxima: dict[str, float] = dict.fromkeys(probes, 0.0)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for name, probe in self.probes.items():
                self.maxima[name] = max(self.maxima[name], float(probe()))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
