"""Shared machinery: settings, interleaved measurement, figures, and a running pipeline.

Every figure is a ratio against a baseline measured in the same run: the variants of
one benchmark are run in rounds (A, B, A, B...), the order rotating each round so
neither always goes first, and the figure is the median of the per-round ratios.
Adjacent runs share the machine's state (frequency, cache, neighbours), so a round's
ratio cancels most of the noise that a ratio of two separate medians would keep.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import math
import operator
import socket
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import blinker

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
}


@dataclass(frozen=True)
class Settings:
    """How hard to push: the full run, or the quick run that only proves the suite works.

    ``scale`` shrinks the quick counts further (the test suite uses it).
    """

    quick: bool = False
    scale: float = 1.0

    def count(self, full: int, quick: int, minimum: int = 1) -> int:
        if not self.quick:
            return full
        return max(minimum, int(quick * self.scale))

    def rounds(self, full: int, quick: int) -> int:
        return full if not self.quick else max(3, int(quick * min(self.scale, 1.0)))


@dataclass
class Figure:
    """One row of the results table."""

    benchmark: str
    name: str
    value: float | None
    unit: str
    target: str | None = None  # e.g. "<= 2.0"; None: informative
    met: bool | None = None
    noise: float | None = None  # spread of the figure, in its own unit
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def figure(benchmark: str, name: str, value: float | None, unit: str, *,
           target: str | None = None, noise: float | None = None, note: str = "") -> Figure:
    """A figure whose ``met`` is computed from ``target`` ("<= 2.0", "== 0", ...)."""
    met = None
    if target is not None and value is not None and math.isfinite(value):
        op, bound = target.split()
        met = _OPERATORS[op](value, float(bound))
    elif target is not None:
        met = False
    return Figure(benchmark, name, value, unit, target, met, noise, note)


@dataclass
class Result:
    """What one benchmark module returns: its figures and the raw numbers behind them."""

    name: str
    title: str
    figures: list[Figure]
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "seconds": round(self.seconds, 2),
                "figures": [f.as_dict() for f in self.figures], "details": self.details}


# -- statistics -----------------------------------------------------------------

def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> float:
    """Half the interquartile range: a robust +/- around the median."""
    if len(values) < 4:
        return (max(values) - min(values)) / 2 if values else math.nan
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q3 - q1) / 2


def interleave(variants: Mapping[str, Callable[[], float]], rounds: int,
               warmup: int = 1) -> dict[str, list[float]]:
    """Run every variant once per round, rotating the order; each returns a measurement.

    The first ``warmup`` rounds are run and discarded (imports, caches, lazy setup).
    """
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for number in range(warmup + rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            value = variants[name]()
            if number >= warmup:
                samples[name].append(value)
    return samples


def paired_ratios(samples: Mapping[str, list[float]], numerator: str,
                  denominator: str) -> list[float]:
    """The per-round ratios numerator/denominator (same round: measured side by side)."""
    return [a / b for a, b in zip(samples[numerator], samples[denominator], strict=True)]


def time_loop(body: Callable[[int], None], count: int, telemetry: Any = None) -> float:
    """Seconds per iteration of ``body(count)``, with the collector paused (as timeit does).

    With ``telemetry``, the events its aggregator still has queued are recorded inside
    the timing: their cost is the sends'."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        body(count)
        if telemetry is not None:
            telemetry.aggregator.run_pending()
        return (time.perf_counter() - started) / count
    finally:
        if enabled:
            gc.enable()


# -- the signals sent ------------------------------------------------------------

#: The hottest signal of a workflow, with the payload the reference orchestrator sends.
HANDOFF = ("handoff_completed", {"from_agent": "pm", "to_agent": "dev", "duration_s": 0.25,
                                 "workflow_id": "wf-1-1"})


def reference_events(workflows: int = 20, seed: int = 7) -> list[tuple[str, dict[str, Any]]]:
    """The signals (short name, payload) of a few reference workflows, recorded once.

    Replaying them gives a realistic mix of signals with a bounded label set.
    """
    from telemetry.cli.simulator import ReferenceOrchestrator
    from telemetry.signals import CONTRACT

    recorded: list[tuple[str, dict[str, Any]]] = []
    namespace = blinker.Namespace()
    orchestrator = ReferenceOrchestrator(seed=seed)
    receivers = []
    for spec in CONTRACT:
        short = spec.name.removeprefix("yolo.")

        def record(sender: Any, _short: str = short, **fields: Any) -> None:
            recorded.append((_short, fields))
        receivers.append(record)
        blinker.signal(spec.name).connect(record, weak=False)
    try:
        orchestrator.run(workflows=workflows)
    finally:
        for spec, record in zip(CONTRACT, receivers, strict=True):
            blinker.signal(spec.name).disconnect(record)
    del namespace
    return recorded


def noop_receiver(sender: Any, **fields: Any) -> None:
    """The baseline receiver: accepts the same payload and does nothing."""


def bare_signals(names: list[str] | None = None) -> dict[str, blinker.Signal]:
    """Signals of a private namespace, each with one no-op receiver (connected strongly,
    as the aggregator is): the cost of a blinker send, nothing else."""
    from telemetry.signals import CONTRACT

    namespace = blinker.Namespace()
    found = {}
    for spec in CONTRACT:
        short = spec.name.removeprefix("yolo.")
        if names is None or short in names:
            found[short] = namespace.signal(f"bare.{short}")
            found[short].connect(noop_receiver, weak=False)
    return found


def yolo_signals() -> dict[str, blinker.Signal]:
    from telemetry.signals import CONTRACT

    return {spec.name.removeprefix("yolo."): blinker.signal(spec.name) for spec in CONTRACT}


def replay(signals: Mapping[str, blinker.Signal],
           events: list[tuple[str, dict[str, Any]]]) -> Callable[[int], None]:
    """A loop body sending ``count`` events, cycling through ``events``.

    Each event is sent as an orchestrator sends it, ``signal.send(sender, **fields)``:
    ``send`` is looked up on each call, so a signal's own ``send`` (telemetry's, while
    it is the signal's only receiver: :class:`~telemetry.signals.YoloSignal`) is the one
    called, as it is in the orchestrator's code."""
    bound = [(signals[short], payload) for short, payload in events]
    length = len(bound)

    def body(count: int) -> None:
        full, rest = divmod(count, length)
        for _ in range(full):
            for signal, payload in bound:
                signal.send(None, **payload)
        for signal, payload in bound[:rest]:
            signal.send(None, **payload)
    return body


def repeat(signal: blinker.Signal, payload: dict[str, Any]) -> Callable[[int], None]:
    """A loop body sending ``payload`` ``count`` times, as :func:`replay` sends."""
    def body(count: int) -> None:
        for _ in range(count):
            signal.send(None, **payload)
    return body


# -- work ------------------------------------------------------------------------

_BURN_LOOPS: list[int] = []


def calibrate_burn(target_s: float = 0.001) -> int:
    """Loop count of :func:`burn_1ms` that takes ``target_s`` of CPU on this machine."""
    loops = 1000
    while True:
        started = time.thread_time()
        _burn(loops)
        took = time.thread_time() - started
        if took > 0.05:
            break
        loops *= 2
    # The calling thread's CPU only: threads left from earlier benchmarks would
    # count in the process's. A busy neighbour slows the loop for a while (shared
    # caches and cores), so the fastest of many short samples is the machine's speed.
    loops = max(1, loops // 5)
    loops = max(1, int(loops * target_s / min(_burn_times(loops, 25))))
    # The fastest sample is a lucky one: burns of that count take about 9 % less
    # than the target in steady use. The median of target-long burns corrects it
    # (twice: the first correction runs before the loop is at its steady speed).
    for _ in range(2):
        loops = max(1, int(loops * target_s / median(_burn_times(loops, 101))))
    return loops


def _burn_times(loops: int, count: int) -> list[float]:
    """The calling thread's CPU seconds of each of ``count`` burns of ``loops``."""
    samples = []
    for _ in range(count):
        started = time.thread_time()
        _burn(loops)
        samples.append(time.thread_time() - started)
    return samples


def _burn(loops: int) -> int:
    total = 0
    for i in range(loops):
        total += i * i % 7
    return total


def burn_loops() -> int:
    """The loop count :func:`burn_1ms` uses (calibrating on first use)."""
    if not _BURN_LOOPS:
        _BURN_LOOPS.append(calibrate_burn())
    return _BURN_LOOPS[0]


def timed_burn(spent: list[float]) -> Callable[[], None]:
    """:func:`burn_1ms`, adding the calling thread's CPU seconds of each burn to
    ``spent[0]`` and counting it in ``spent[1]``."""
    def work() -> None:
        started = time.thread_time()
        burn_1ms()
        spent[0] += time.thread_time() - started
        spent[1] += 1
    return work


def rescale_burn(seconds_per_burn: float, target_s: float = 0.001) -> int:
    """Scale :func:`burn_1ms`'s loop count so that burns that took ``seconds_per_burn``
    each take ``target_s``: a shared host's speed drifts over minutes (a busy sibling
    core slows the loop by a third), so a phase that states its figures per 1 ms of
    work measures its own burns under its own load and rescales."""
    loops = max(1, round(burn_loops() * target_s / seconds_per_burn))
    _BURN_LOOPS[:] = [loops]
    return loops


def burn_1ms() -> None:
    """About 1 ms of pure CPU work (a fixed loop count, calibrated once per process):
    an agent operation's own work, against which telemetry's cost is measured."""
    if not _BURN_LOOPS:
        _BURN_LOOPS.append(calibrate_burn())
    _burn(_BURN_LOOPS[0])


# -- a running pipeline ------------------------------------------------------------

def closed_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tracing_available() -> bool:
    return importlib.util.find_spec("telemetry.tracing") is not None


def exporter_kinds() -> dict[str, str]:
    """Which exporters do real work here ("implemented") and which are still stubs."""
    from exporters import Exporter, discover

    return {name: ("stub" if cls.start is Exporter.start else "implemented")
            for name, cls in sorted(discover().items())}


def pipeline_config(*, otlp_endpoint: str, statsd_port: int, tracing: bool = False,
                    metrics: bool = True, **limits: Any) -> dict[str, Any]:
    """Prometheus + OTLP + StatsD enabled, server on a free loopback port."""
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "exporters": {
            "prometheus": {"enabled": True},
            "otlp": {"enabled": True, "endpoint": otlp_endpoint, "metrics": metrics,
                     "traces": tracing},
            "statsd": {"enabled": True, "host": "127.0.0.1", "port": statsd_port},
        },
        "tracing": {"enabled": tracing, "sampler_ratio": 1.0},
        "limits": dict(limits),
    }


def start_telemetry(config: Mapping[str, Any], *, receiving: bool = True):
    """A started :class:`telemetry.Telemetry`, with the environment ignored.

    ``receiving=False`` disconnects its aggregator at once: use :func:`connected`
    to let it receive only while it is being measured.
    """
    from telemetry import Telemetry, load_config

    telemetry = Telemetry(load_config(dict(config), environ={})).start()
    if not receiving:
        telemetry.aggregator.disconnect()
    return telemetry


def listener_count(telemetry: Any) -> int:
    """Per-event consumers hooked to the aggregator (the tracer follows it)."""
    followers = telemetry.aggregator._followers
    return len(followers.listeners) + len(followers.followers)


def dropped(telemetry: Any) -> dict[str, float]:
    """``yolo_telemetry_dropped_total`` by component/reason (spans dropped when the
    span queue is full, for instance): a benchmark must say when work was skipped."""
    from telemetry import catalogue as cat

    (family,) = telemetry.aggregator.collect([cat.DROPPED])
    return {"/".join(sample.labels): sample.value for sample in family.samples}


@contextlib.contextmanager
def connected(telemetry: Any) -> Iterator[None]:
    """Let ``telemetry``'s aggregator receive signals only inside the block, so several
    started pipelines can be measured in turn without receiving each other's events."""
    telemetry.aggregator.connect()
    try:
        yield
    finally:
        telemetry.aggregator.disconnect()


@dataclass
class Context:
    """What every benchmark of one run shares."""

    settings: Settings
    receivers: Any  # benchmarks.receivers.Receivers
    events: list[tuple[str, dict[str, Any]]]
    tracing: bool  # whether a tracer exists to be measured

    def config(self, *, tracing: bool = False, **limits: Any) -> dict[str, Any]:
        return pipeline_config(otlp_endpoint=self.receivers.otlp_endpoint,
                               statsd_port=self.receivers.statsd_port, tracing=tracing,
                               **limits)
