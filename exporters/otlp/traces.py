"""The span pipeline behind the tracer: sampler and guarded exporter.

The signal-to-span logic lives in :mod:`telemetry.tracing` and works with any
OpenTelemetry tracer; this module builds the pieces the OTLP exporter gives it:

* :func:`make_sampler` turns ``tracing.sampler``/``sampler_ratio`` into an SDK sampler
  (the tracer decides these samplers itself, without calling them per span:
  :mod:`telemetry.tracing.spans.builder`);
* :class:`GuardedSpanExporter` wraps the OTLP span exporter: it reports failures to
  /health and the drop counter, and can be told to give up so shutdown stays bounded
  when the collector is dead.

The batch processor with the ``tracing.batch`` limits is
:class:`exporters.otlp.batch.SpanBatchProcessor`.

This module imports the OpenTelemetry SDK: import it only when tracing is enabled.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from telemetry import catalogue as cat
from telemetry.tracing.spans.record import to_readable

log = logging.getLogger("telemetry.exporters.otlp")

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.config import TracingConfig
    from telemetry.workers import ExporterStatus


def make_sampler(config: TracingConfig) -> Sampler:
    """The SDK sampler named by ``tracing.sampler`` (OTEL_TRACES_SAMPLER's names)."""
    name = config.sampler
    if name.endswith("traceidratio"):
        root: Sampler = TraceIdRatioBased(config.sampler_ratio)
    elif name.endswith("always_off"):
        root = ALWAYS_OFF
    else:
        root = ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


#: The GenAI conventions' attribute naming the model provider (required on their spans).
PROVIDER_NAME = "gen_ai.provider.name"
#: A span with this attribute is a GenAI span.
OPERATION_NAME = "gen_ai.operation.name"


def with_provider(spans: Sequence[Any], provider: str) -> list[Any]:
    """Finished tuples with ``gen_ai.provider.name`` added to the GenAI spans.

    The signals do not say which provider an agent used, so the config names it
    (``tracing.genai_provider``). It is added to the spans the OTLP exporter sends,
    on the export thread or as a span is written when it ends
    (:meth:`GuardedSpanExporter.span_writer`): a new attribute dict for each GenAI
    span, so the span's own is left as the tracer made it. A span written already
    (bytes) has it.
    """
    out = []
    for span in spans:
        if type(span) is tuple:
            attributes = span[8]
            if OPERATION_NAME in attributes and PROVIDER_NAME not in attributes:
                span = (*span[:8], {**attributes, PROVIDER_NAME: provider}, *span[9:])
        out.append(span)
    return out


class GuardedSpanExporter(SpanExporter):
    """Delegates to the OTLP span exporter, reporting every outcome.

    An accepted batch counts its spans in ``yolo_telemetry_spans_exported_total``.
    A failed batch marks the traces part of the exporter ``failing`` in /health,
    increments the exporter error counter and counts its spans as dropped
    (``reason="export_failed"``): spans are not retried beyond what the OTLP
    exporter itself does within its timeout. After :meth:`give_up` (shutdown ran out
    of time) batches are dropped at once (``reason="shutdown_timeout"``).

    Every batch is counted once, when its outcome is known, or by :meth:`give_up`
    for a batch still in flight: give_up counts those and the queue's spans
    (``on_give_up``, set by the batch processor) as dropped before it returns, so
    stopping has accounted for every span when it returns, even if a request is
    still stuck on a hung collector. A batch give_up counted is not counted again
    when its request ends.
    """

    def __init__(self, inner: SpanExporter, status: ExporterStatus, aggregator: Aggregator) -> None:
        self.inner = inner
        self.status = status
        self.aggregator = aggregator
        self._given_up = threading.Event()
        self._shutdown_lock = threading.Lock()
        self._inner_shut = False
        #: Batches being exported: a token for each, with its span count.
        self._in_flight: dict[object, int] = {}
        self._in_flight_lock = threading.Lock()
        #: Called by :meth:`give_up` to count what is still queued (the processor's).
        self.on_give_up: Callable[[], Any] | None = None
        #: ``tracing.genai_provider``: ``gen_ai.provider.name`` of the GenAI spans sent.
        self.genai_provider: str | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._export(self.inner.export, spans)

    def span_writer(self, origin: Any) -> Callable[[tuple], bytes] | None:
        """The inner exporter's writer of spans as they end (see
        :meth:`exporters.otlp.fastpath.span_encoding.SpanEncoder.span_writer`), with
        ``genai_provider`` added first; None when it has none."""
        make = getattr(self.inner, "span_writer", None)
        write = make(origin) if make is not None else None
        provider = self.genai_provider
        if write is None or not provider:
            return write
        return lambda span: write(with_provider((span,), provider)[0])

    def export_records(self, spans: Sequence[Any]) -> SpanExportResult:
        """Export finished tuples (:mod:`telemetry.tracing.spans.record`) and spans
        written as they ended (bytes): as they are to an exporter that takes them, as
        SDK spans to any other (which never gets bytes: it has no writer)."""
        if self.genai_provider:
            spans = with_provider(spans, self.genai_provider)
        export_records = getattr(self.inner, "export_records", None)
        if export_records is not None:
            return self._export(export_records, spans)
        return self._export(lambda batch: self.inner.export([to_readable(s) for s in batch]),
                            spans)

    def _export(self, export: Callable[[Sequence[Any]], SpanExportResult],
                spans: Sequence[Any]) -> SpanExportResult:
        token = object()
        with self._in_flight_lock:  # checked with the registration: give_up sees either
            if self._given_up.is_set():
                self.aggregator.count_dropped("tracer", "shutdown_timeout", len(spans))
                return SpanExportResult.FAILURE
            self._in_flight[token] = len(spans)
        try:
            result = export(spans)
        except Exception as error:  # the SDK would only log it; report it too
            result = error
        with self._in_flight_lock:
            if self._in_flight.pop(token, None) is None:
                return SpanExportResult.FAILURE  # give_up counted it already
        if isinstance(result, Exception):
            self._failed(result, len(spans))
            return SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.status.succeeded()
            self.aggregator.inc(cat.SPANS_EXPORTED, (), len(spans))
        else:
            self._failed("span export failed (the collector refused it or is unreachable)",
                         len(spans))
        return result

    def _failed(self, error: BaseException | str, count: int) -> None:
        self.status.failed(error, self.aggregator)
        self.aggregator.count_dropped("tracer", "export_failed", count)

    def give_up(self) -> None:
        """Drop further batches, count those in flight and queued as dropped, and
        interrupt the inner exporter's requests and retry wait."""
        with self._in_flight_lock:
            self._given_up.set()
            in_flight = sum(self._in_flight.values())
            self._in_flight.clear()
        if in_flight:
            self.aggregator.count_dropped("tracer", "shutdown_timeout", in_flight)
        if self.on_give_up is not None:
            try:
                self.on_give_up()
            except Exception:  # stopping must finish whatever happens
                log.exception("counting the queued spans at shutdown failed")
        self._shutdown_inner()

    def _shutdown_inner(self) -> None:
        with self._shutdown_lock:
            if self._inner_shut:
                return
            self._inner_shut = True
        with contextlib.suppress(Exception):  # closing a dead connection may fail
            self.inner.shutdown()

    def shutdown(self) -> None:
        self._shutdown_inner()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
