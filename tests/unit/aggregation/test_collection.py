"""Collections copy a chunk of cells per hold of the lock, yet every one is consistent
where readers rely on it: while threads hammer sends, no counter goes backwards
between two collections, every histogram's count equals its +Inf bucket (and its sum
matches its counts), in the aggregator's copies and in the /metrics text alike."""

from __future__ import annotations

import math
import threading
import urllib.request
from collections.abc import Callable, Iterator

import blinker
import pytest
from prometheus_client.parser import text_string_to_metric_families

from telemetry import catalogue as cat
from telemetry.aggregation import collection
from telemetry.aggregation.aggregator import Aggregator
from telemetry.runtime import Telemetry

#: More cells than one hold copies, so every collection takes several holds.
PAIRS = collection.ONE_HOLD + 3 * collection.CHUNK + 17
SENDERS = 3
DURATION = 0.25  # every observation: a histogram's sum is exactly 0.25 x its count
COLLECTIONS = 25

send_handoff = blinker.signal("yolo.handoff_completed").send


def hammer(stop: threading.Event, offset: int) -> None:
    number = offset
    while not stop.is_set():
        send_handoff(None, from_agent=f"agent-{number % PAIRS}", to_agent="dev",
                     duration_s=DURATION)
        number += 7


def while_sending(read: Callable[[], None], reads: int, senders: int = SENDERS) -> None:
    """Call ``read`` ``reads`` times while ``senders`` threads send handoffs."""
    stop = threading.Event()
    threads = [threading.Thread(target=hammer, args=(stop, index), daemon=True)
               for index in range(senders)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(reads):
            read()
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(thread.is_alive() for thread in threads)


class Invariants:
    """Checks one collection's (labels -> counter, labels -> histogram) against the last."""

    def __init__(self) -> None:
        self.counters: dict[tuple, float] = {}
        self.counts: dict[tuple, float] = {}
        self.grew = 0

    def check(self, counters: dict[tuple, float],
              histograms: dict[tuple, tuple[float, float, float]]) -> None:
        for labels, value in counters.items():
            assert value >= self.counters.get(labels, 0.0), labels
            self.grew += value > self.counters.get(labels, 0.0)
        for labels, (count, infinite, total) in histograms.items():
            assert count == infinite, labels
            assert total == pytest.approx(DURATION * count), labels
            assert count >= self.counts.get(labels, 0.0), labels
        self.counters.update(counters)
        self.counts.update({labels: count for labels, (count, _, _) in histograms.items()})


@pytest.fixture
def aggregator() -> Iterator[Aggregator]:
    """Room for every pair (the default cap is 1,000 label sets)."""
    agg = Aggregator(max_series=2 * PAIRS)
    agg.connect()
    yield agg
    agg.disconnect()


def test_every_collection_is_consistent_while_threads_send(aggregator: Aggregator) -> None:
    invariants = Invariants()

    def read() -> None:
        counters, histograms = aggregator.collect([cat.HANDOFFS, cat.HANDOFF_DURATION])
        invariants.check(
            {s.labels: s.value for s in counters.samples},
            {s.labels: (s.value.count, sum(s.value.bucket_counts), s.value.sum)
             for s in histograms.samples})

    while_sending(read, COLLECTIONS)
    assert invariants.grew > 0  # the counters moved while we read
    assert len(invariants.counters) == PAIRS


def test_column_copies_are_consistent_while_threads_send(aggregator: Aggregator) -> None:
    """The columns (copy_series), read while threads send, form one sequence of
    consistent collections."""
    invariants = Invariants()

    def read() -> None:
        counters, histograms = aggregator.copy_series([cat.HANDOFFS, cat.HANDOFF_DURATION])
        invariants.check(
            dict(zip(counters.labels, counters.values, strict=True)),
            {labels: (sum(value[:-1]), sum(value[:-1]), value[-1])
             for labels, value in zip(histograms.labels, histograms.values, strict=True)})

    while_sending(read, COLLECTIONS)
    assert invariants.grew > 0
    assert len(invariants.counters) == PAIRS


def test_every_scrape_is_consistent_while_threads_send(
        start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry(limits={"max_series_per_metric": 4 * PAIRS})
    invariants = Invariants()
    handoffs = cat.HANDOFFS.prometheus_name
    durations = cat.HANDOFF_DURATION.prometheus_name

    def read() -> None:
        with urllib.request.urlopen(f"{tel.url}/metrics", timeout=30) as response:
            text = response.read().decode()
        counters: dict[tuple, float] = {}
        parts: dict[tuple, dict[str, float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = (sample.labels.get("from_agent"), sample.labels.get("to_agent"))
                if sample.name == handoffs:
                    counters[labels] = sample.value
                elif sample.name == f"{durations}_count":
                    parts.setdefault(labels, {})["count"] = sample.value
                elif sample.name == f"{durations}_sum":
                    parts.setdefault(labels, {})["sum"] = sample.value
                elif (sample.name == f"{durations}_bucket"
                      and math.isinf(float(sample.labels["le"]))):
                    parts.setdefault(labels, {})["inf"] = sample.value
        invariants.check(counters, {labels: (p["count"], p["inf"], p["sum"])
                                    for labels, p in parts.items()})

    while_sending(read, 5, senders=1)  # a scrape shares the interpreter with them
    assert invariants.grew > 0
    assert len(invariants.counters) == PAIRS
