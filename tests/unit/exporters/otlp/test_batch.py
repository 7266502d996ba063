"""The span queue and batch worker: limits, wake-ups, flush, shutdown, drop counting."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporters.otlp.batch import SpanBatchProcessor
from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.config import BatchConfig
from telemetry.tracing.spans.record import Origin
from tests.support.backends import wait_until

ORIGIN = Origin(TracerProvider(shutdown_on_exit=False).resource, InstrumentationScope("t"), None)


def span(number: int) -> tuple:
    """A finished span (the tuple the tracer hands over) numbered by its span id."""
    return (ORIGIN, f"span {number}", 1, number, None, None, 1, 2, {}, None, 0, None, 1)


class Records(SpanExporter):
    """Keeps the batches it is given; ``gate`` (when set) holds every export."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.gate: threading.Event | None = None
        self.shut = False

    def export_records(self, spans: Sequence[tuple]) -> SpanExportResult:
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append(list(spans))
        return SpanExportResult.SUCCESS

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.export_records(spans)  # type: ignore[arg-type]

    def shutdown(self) -> None:
        self.shut = True

    def ids(self) -> list[int]:
        return [s[3] if type(s) is tuple else s.context.span_id
                for batch in self.batches for s in batch]


@pytest.fixture
def make(aggregator: Aggregator) -> Iterator[Any]:
    made: list[SpanBatchProcessor] = []

    def build(exporter: SpanExporter, **batch: int) -> SpanBatchProcessor:
        made.append(SpanBatchProcessor(exporter, BatchConfig(**batch), aggregator))
        return made[-1]

    yield build
    for processor in made:
        processor.shutdown()


def test_a_full_batch_wakes_the_worker_at_once(make) -> None:
    exporter = Records()
    processor = make(exporter, max_export_batch_size=3, schedule_delay_ms=3_600_000)
    for number in range(1, 4):
        processor.emit_record(span(number))
    wait_until(lambda: exporter.batches, 10, what="a batch")
    assert exporter.ids() == [1, 2, 3]  # in the order they ended


def test_a_partial_batch_waits_for_the_schedule_delay(make) -> None:
    exporter = Records()
    processor = make(exporter, max_export_batch_size=100, schedule_delay_ms=50)
    processor.emit_record(span(1))
    wait_until(lambda: exporter.batches, 10, what="the delayed export")
    assert exporter.ids() == [1]


def test_feeders_run_before_scheduled_exports_and_flushes_only(make) -> None:
    """A tracer's waiting events are recorded (the feeder) before an export on the
    schedule and before a flush; an export woken by a full batch sends the full
    batches queued and leaves the waiting events to the thread that sends them."""
    woken, scheduled = Records(), Records()
    full = make(woken, max_export_batch_size=3, schedule_delay_ms=3_600_000)
    timed = make(scheduled, max_export_batch_size=100, schedule_delay_ms=50)
    fed: dict[str, list[int]] = {"full": [], "timed": []}
    full.add_feeder(lambda: fed["full"].append(len(woken.batches)))
    timed.add_feeder(lambda: fed["timed"].append(len(scheduled.batches)))
    for number in range(1, 4):
        full.emit_record(span(number))
    timed.emit_record(span(9))
    wait_until(lambda: woken.batches and scheduled.batches, 10, what="both exports")
    assert fed["full"] == [] and woken.ids() == [1, 2, 3]
    assert fed["timed"][0] == 0 and scheduled.ids() == [9]  # fed, then exported
    full.emit_record(span(4))
    assert full.force_flush(10_000)
    assert fed["full"] == [1] and woken.ids() == [1, 2, 3, 4]


def test_batches_are_at_most_the_batch_size(make) -> None:
    exporter = Records()
    processor = make(exporter, max_export_batch_size=4, schedule_delay_ms=3_600_000)
    exporter.gate = threading.Event()
    for number in range(1, 12):
        processor.emit_record(span(number))
    exporter.gate.set()
    assert processor.force_flush(10_000)
    assert [len(batch) for batch in exporter.batches] == [4, 4, 3]
    assert exporter.ids() == list(range(1, 12))


def test_a_full_queue_drops_the_oldest_and_counts_it(make, aggregator: Aggregator) -> None:
    exporter = Records()
    exporter.gate = threading.Event()
    processor = make(exporter, max_queue_size=4, max_export_batch_size=4,
                     schedule_delay_ms=3_600_000)
    for number in range(1, 5):  # the worker takes these and blocks in export
        processor.emit_record(span(number))
    wait_until(lambda: not processor._queue, 10, what="the worker took the batch")
    for number in range(5, 12):  # 7 into a queue of 4: the 3 oldest go
        processor.emit_record(span(number))
    assert aggregator.value(cat.DROPPED, ("tracer", "queue_full")) == 3
    exporter.gate.set()
    assert processor.force_flush(10_000)
    assert exporter.ids() == [1, 2, 3, 4, 8, 9, 10, 11]


def test_flush_gives_up_at_its_deadline_while_an_export_hangs(make) -> None:
    exporter = Records()
    exporter.gate = threading.Event()
    processor = make(exporter, max_export_batch_size=1, schedule_delay_ms=3_600_000)
    processor.emit_record(span(1))  # the worker blocks on it
    wait_until(lambda: not processor._queue, 10, what="the worker took the span")
    processor.emit_record(span(2))
    assert processor.force_flush(50) is False
    exporter.gate.set()
    assert processor.force_flush(10_000) is True
    assert exporter.ids() == [1, 2]


def test_shutdown_exports_what_is_queued_then_shuts_the_exporter(make) -> None:
    exporter = Records()
    processor = make(exporter, max_export_batch_size=100, schedule_delay_ms=3_600_000)
    for number in range(1, 6):
        processor.emit_record(span(number))
    processor.shutdown()
    assert exporter.ids() == [1, 2, 3, 4, 5] and exporter.shut
    assert not processor._worker.is_alive()
    assert processor.force_flush() is False
    processor.shutdown()  # idempotent


def test_sdk_spans_and_sdk_exporters_are_served_too(make) -> None:
    """An exporter without ``export_records`` gets SDK spans; SDK spans ended through the
    provider (``on_end``) share the queue; unsampled ones are not exported."""

    class SdkOnly(SpanExporter):
        def __init__(self) -> None:
            self.spans: list[ReadableSpan] = []

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.spans.extend(spans)
            return SpanExportResult.SUCCESS

    exporter = SdkOnly()
    processor = make(exporter, schedule_delay_ms=3_600_000)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    sdk_span = provider.get_tracer("sdk").start_span("sdk")
    sdk_span.end()
    processor.emit_record(span(7))
    assert processor.force_flush(10_000)
    assert [s.name for s in exporter.spans] == ["sdk", "span 7"]
    assert all(isinstance(s, ReadableSpan) for s in exporter.spans)
    assert exporter.spans[1].resource is ORIGIN.resource


def test_the_direct_queue_batches_and_counts_as_emit_record_does(
        make, aggregator: Aggregator) -> None:
    """The tracer appends to ``direct_queue`` itself while it is below its bound and
    calls emit_record otherwise: the worker still wakes at a full batch, and a full
    queue still drops the oldest and counts it."""
    exporter = Records()
    exporter.gate = threading.Event()
    processor = make(exporter, max_queue_size=4, max_export_batch_size=4,
                     schedule_delay_ms=3_600_000)
    queue, quiet_below = processor.direct_queue
    assert queue is processor._queue and quiet_below == 3

    def emit(finished: tuple) -> None:  # what SpanBuilder and SpanRecord.end do
        if len(queue) < quiet_below:
            queue.append(finished)
        else:
            processor.emit_record(finished)

    for number in range(1, 5):  # the fourth fills the batch: the worker takes it
        emit(span(number))
    wait_until(lambda: not processor._queue, 10, what="the worker took the batch")
    for number in range(5, 12):  # 7 into a queue of 4: the 3 oldest go
        emit(span(number))
    assert aggregator.value(cat.DROPPED, ("tracer", "queue_full")) == 3
    exporter.gate.set()
    assert processor.force_flush(10_000)
    assert exporter.ids() == [1, 2, 3, 4, 8, 9, 10, 11]


def test_the_builder_appends_directly_only_to_a_sole_batch_processor(make) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from telemetry.tracing.spans.builder import SpanBuilder

    provider = TracerProvider(shutdown_on_exit=False)
    processor = make(Records(), schedule_delay_ms=3_600_000)
    provider.add_span_processor(processor)
    builder = SpanBuilder(provider.get_tracer("t"), max_text=128)
    assert builder.queue is processor._queue
    assert builder.quiet_below == processor.direct_queue[1]
    root = builder.start_span("root", None, {}, 1)
    builder.leaf("leaf", root, {"k": "v"}, 1, 2)
    root.end(3)
    assert [finished[1] for finished in processor._queue] == ["leaf", "root"]
    # names of unknown length are checked against the limit: through emit_record
    assert SpanBuilder(provider.get_tracer("t"), max_text=None).queue == ()
    provider.add_span_processor(SimpleSpanProcessor(Records()))
    builder.start_span("next trace", None, {}, 1)  # a root looks at the processors again
    assert builder.queue == () and builder.quiet_below == -1
