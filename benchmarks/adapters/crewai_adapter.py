"""What the CrewAI adapter costs a crew run:
``python benchmarks/adapters/crewai_adapter.py [--quick]`` in the crewai venv
(``nox -s "adapters(framework='crewai')"`` makes one: ``.nox/adapters-framework-crewai``).

A scripted run: the two-task crew of the adapter tests (a researcher makes one tool call
and answers, a writer answers), agents answering from a script through a ``BaseLLM``
subclass. CrewAI's own telemetry, tracing and version check are off (as the guide
says). Each variant runs it ``RUNS`` times, every kickoff followed by the wait for
CrewAI's event handlers (``crewai_event_bus.flush()``, which kickoff does itself before
its completion event):

* ``bare``: telemetry running (Prometheus), the adapter not instrumented;
* ``adapter``: the same, instrumented (``handle.flush()`` also sends what the reorder
  buffer holds, so every signal is sent inside the timed run);
* ``noop``: a ``BaseEventListener`` with a do-nothing handler for the same event types:
  what CrewAI's bus costs by itself for any listener (its thread-pool dispatch).

Variants run in interleaved rounds (benchmarks/README.md, "Method"): the figure is the
median of the per-round ratios adapter / bare (and noop / bare), ``±`` half their
interquartile range. The scripted model answers at once, so CrewAI's own work is all
there is to compare with: a real model call (hundreds of milliseconds) makes the ratio
far smaller. The cost per framework event is (adapter - bare) / the signals one run sends.

A kickoff's own time (about 0.2 s here, most of it CrewAI's) hides a cost of
microseconds, so the script also times the adapter's own path per CrewAI event: the
events of one recorded kickoff fed straight to the adapter's handlers (extract, reorder
buffer, tracker, signals into the running telemetry), in the same interleaved rounds
against handlers that do nothing.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_DATA = tempfile.mkdtemp(prefix="yolo-crewai-bench-")  # CrewAI's storage: not the user's
atexit.register(shutil.rmtree, _DATA, ignore_errors=True)
os.environ["XDG_DATA_HOME"] = _DATA
for _name in ("CREWAI_DISABLE_TELEMETRY", "CREWAI_DISABLE_TRACKING", "CREWAI_TESTING",
              "CREWAI_DISABLE_VERSION_CHECK"):
    os.environ[_name] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import blinker  # noqa: E402
from crewai.events import BaseEventListener, crewai_event_bus  # noqa: E402

from benchmarks.harness import interleave, median, paired_ratios, spread  # noqa: E402
from telemetry import Telemetry, load_config  # noqa: E402
from telemetry.adapters import crewai as adapter  # noqa: E402
from telemetry.signals import CONTRACT  # noqa: E402
from tests.adapters.crewai.scenario import research_crew  # noqa: E402


class NoopListener(BaseEventListener):
    """A listener on the adapter's event types that does nothing."""

    def setup_listeners(self, bus: Any) -> None:
        self.handlers = []
        for event_type in adapter.EXTRACTORS:
            def on_event(source: Any, event: Any) -> None:
                pass
            bus.on(event_type)(on_event)
            self.handlers.append((event_type, on_event))

    def remove(self) -> None:
        for event_type, handler in self.handlers:
            crewai_event_bus.off(event_type, handler)


def variant(kind: str, runs: int) -> Callable[[], float]:
    """Seconds for ``runs`` scripted kickoffs (crews built before the clock starts)."""

    def measure() -> float:
        crews = [research_crew() for _ in range(runs)]
        handle = adapter.instrument() if kind == "adapter" else None
        noop = NoopListener() if kind == "noop" else None
        try:
            started = time.perf_counter()
            for crew in crews:
                crew.kickoff()
                if handle is not None:
                    handle.flush()
                else:
                    crewai_event_bus.flush()
            return time.perf_counter() - started
        finally:
            if handle is not None:
                handle.uninstrument()
            if noop is not None:
                noop.remove()
    return measure


def signals_per_run() -> int:
    """How many signals one instrumented run sends (the framework events it maps)."""
    seen = [0]

    def count(sender: Any, **fields: Any) -> None:
        seen[0] += 1

    for spec in CONTRACT:
        blinker.signal(spec.name).connect(count)
    try:
        variant("adapter", 1)()
    finally:
        for spec in CONTRACT:
            blinker.signal(spec.name).disconnect(count)
    return seen[0]


def recorded_kickoff() -> list[tuple[Any, Any]]:
    """(source, event) of one kickoff's events the adapter listens to, in time order."""
    seen: list[tuple[Any, Any]] = []
    handlers = []
    for event_type in adapter.EXTRACTORS:
        def on_event(source: Any, event: Any) -> None:
            seen.append((source, event))
        crewai_event_bus.on(event_type)(on_event)
        handlers.append((event_type, on_event))
    try:
        research_crew().kickoff()
        crewai_event_bus.flush()
    finally:
        for event_type, handler in handlers:
            crewai_event_bus.off(event_type, handler)
    return sorted(seen, key=lambda pair: pair[1].timestamp)


def handler_path(stream: list[tuple[Any, Any]], copies: int,
                 instrumented: bool) -> Callable[[], float]:
    """Seconds to feed ``copies`` times ``stream`` to the adapter's handlers (or to
    do-nothing functions), bypassing CrewAI's thread pool."""

    def nothing(source: Any, event: Any) -> None:
        pass

    def measure() -> float:
        handle = adapter.instrument(delay_s=3600) if instrumented else None
        handlers = dict(handle.listener.handlers) if handle else {}
        try:
            started = time.perf_counter()
            for _ in range(copies):
                for source, event in stream:
                    handlers.get(type(event), nothing)(source, event)
                if handle is not None:
                    handle.buffer.release_all()
            return time.perf_counter() - started
        finally:
            if handle is not None:
                handle.uninstrument()
    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds: proves it runs")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # CrewAI warns about the scripted model's token count
    rounds, runs = (5, 3) if args.quick else (21, 10)
    tel = Telemetry(load_config({"server": {"port": 0}}, environ={})).start()
    try:
        variant("bare", 1)()  # warm-up: imports, first-run setup
        print(f"CrewAI adapter overhead: {rounds} rounds of {runs} kickoffs each "
              "(two tasks, one tool call)")
        print(f"{'signals/run':>11} {'bare ms/run':>12} {'noop/bare':>16} "
              f"{'adapter/bare':>16} {'us/signal':>10}")
        samples = interleave({"bare": variant("bare", runs), "noop": variant("noop", runs),
                              "adapter": variant("adapter", runs)}, rounds)
        ratios = paired_ratios(samples, "adapter", "bare")
        noop = paired_ratios(samples, "noop", "bare")
        events = signals_per_run()
        extra = [(a - b) / runs / events * 1e6
                 for a, b in zip(samples["adapter"], samples["bare"], strict=True)]
        bare_ms = median(samples["bare"]) / runs * 1e3
        print(f"{events:>11} {bare_ms:>12.2f} {median(noop):>9.3f} ±{spread(noop):.3f} "
              f"{median(ratios):>9.3f} ±{spread(ratios):.3f} {median(extra):>10.1f}")
        stream, copies = recorded_kickoff(), 20 if args.quick else 200
        paths = interleave({"nothing": handler_path(stream, copies, False),
                            "adapter": handler_path(stream, copies, True)}, rounds)
        per_event = [(a - b) / copies / len(stream) * 1e6
                     for a, b in zip(paths["adapter"], paths["nothing"], strict=True)]
        print(f"adapter path per CrewAI event ({len(stream)} events a kickoff, "
              f"{events} signals): {median(per_event):.1f} us ±{spread(per_event):.1f}")
    finally:
        tel.stop()


if __name__ == "__main__":
    main()
