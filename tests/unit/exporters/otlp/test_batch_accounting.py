"""Every span ended is exported, still queued or counted as dropped: exactly, with
many threads ending spans at once, and when stopping gives up on a stuck exporter."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from exporters.otlp.batch import SpanBatchProcessor
from exporters.otlp.traces import GuardedSpanExporter
from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.config import BatchConfig
from telemetry.workers import ExporterStatus
from tests.unit.exporters.otlp.test_batch import Records, span

THREADS = 8
SPANS_PER_THREAD = 2000
#: Bursts tried; the race the test looks for showed in about a third of them.
TRIALS = 20
DEADLINE_S = 10.0


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Switch threads as often as possible, so a race between two bytecodes shows."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def dropped(aggregator: Aggregator, reason: str) -> int:
    return int(aggregator.value(cat.DROPPED, ("tracer", reason)))


@pytest.mark.usefixtures("switch_often")
def test_drops_after_a_burst_from_many_threads_are_counted_exactly() -> None:
    """Checking the queue's length and then appending let two threads both see room
    (one span pushed out uncounted) or both see it full (one counted but kept)."""
    misses = []
    for trial in range(TRIALS):
        aggregator = Aggregator()
        exporter = Records()
        exporter.gate = threading.Event()  # the worker holds its first batch meanwhile
        processor = SpanBatchProcessor(exporter, BatchConfig(
            max_queue_size=8, max_export_batch_size=8, schedule_delay_ms=3_600_000), aggregator)
        try:
            def burst(processor: SpanBatchProcessor = processor) -> None:
                for number in range(SPANS_PER_THREAD):
                    processor.emit_record(span(number))

            threads = [threading.Thread(target=burst) for _ in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(DEADLINE_S)
            exporter.gate.set()
            assert processor.force_flush(int(DEADLINE_S * 1000))
            accounted = (sum(len(batch) for batch in exporter.batches)
                         + dropped(aggregator, "queue_full") + len(processor._queue))
            if accounted != THREADS * SPANS_PER_THREAD:
                misses.append((trial, accounted - THREADS * SPANS_PER_THREAD))
        finally:
            processor.shutdown()
    assert not misses, f"(trial, spans counted too many) {misses}"


class Stuck(Records):
    """An exporter whose requests never end until released (a hung collector that the
    transport cannot interrupt: a connect to a black-holed address, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def export_records(self, spans: Sequence[tuple]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(DEADLINE_S)
        return SpanExportResult.SUCCESS


def test_give_up_counts_the_batch_in_flight_and_the_queue_at_once(
        aggregator: Aggregator) -> None:
    inner = Stuck()
    guarded = GuardedSpanExporter(inner, ExporterStatus("otlp"), aggregator)
    processor = SpanBatchProcessor(guarded, BatchConfig(
        max_queue_size=100, max_export_batch_size=10, schedule_delay_ms=3_600_000), aggregator)
    try:
        for number in range(10):
            processor.emit_record(span(number))
        assert inner.entered.wait(DEADLINE_S)  # a batch of 10 in flight, and stuck
        for number in range(25):
            processor.emit_record(span(100 + number))
        started = time.monotonic()
        guarded.give_up()
        assert time.monotonic() - started < 1.0
        assert dropped(aggregator, "shutdown_timeout") == 10 + 25  # at once, not later
        inner.release.set()  # the stuck request ends (even with success): not counted twice
        processor.shutdown()
        assert dropped(aggregator, "shutdown_timeout") == 35
        assert dropped(aggregator, "export_failed") == 0
        assert guarded.status.exports == 0
        assert aggregator.value(cat.SPANS_EXPORTED, ()) == 0
    finally:
        inner.release.set()
        processor.shutdown()


class Answers(Records):
    """An exporter that answers each batch with the next of ``outcomes``: a result,
    or an exception to raise."""

    def __init__(self, *outcomes: SpanExportResult | Exception) -> None:
        super().__init__()
        self.outcomes = list(outcomes)

    def export_records(self, spans: Sequence[tuple]) -> SpanExportResult:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_each_span_is_counted_once_as_exported_or_dropped(aggregator: Aggregator) -> None:
    """The ledger a user reads: spans the collector accepted in
    ``yolo_telemetry_spans_exported_total``, the rest in ``dropped``."""
    guarded = GuardedSpanExporter(Answers(
        SpanExportResult.SUCCESS, SpanExportResult.FAILURE, ConnectionError("refused"),
        SpanExportResult.SUCCESS), ExporterStatus("otlp"), aggregator)
    for size in (3, 5, 7, 11):
        guarded.export_records([span(number) for number in range(size)])
    assert aggregator.value(cat.SPANS_EXPORTED, ()) == 3 + 11
    assert dropped(aggregator, "export_failed") == 5 + 7
    assert guarded.status.exports == 2
