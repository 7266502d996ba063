"""The span queue and the batch worker that exports it.

:class:`SpanBatchProcessor` is what the SDK's ``BatchSpanProcessor`` is to SDK spans,
for the finished tuples of :mod:`telemetry.tracing.spans.record`: the tracer appends each
ended span to a bounded queue (:meth:`~SpanBatchProcessor.emit_record`, one deque
append and two length checks on the sending thread), and a worker thread takes them
off in batches and gives them to the exporter. When the exporter can write a span
by itself (:meth:`~SpanBatchProcessor.span_writer`, the OTLP exporters of a compiled
build), the tracer queues each span written as it ends (bytes) instead of its tuple.
It is an SDK ``SpanProcessor``, so a ``TracerProvider`` holds, flushes and shuts it
down as it would the SDK's.

Same limits and behaviour as the SDK's batch processor (``tracing.batch``, or the
``OTEL_BSP_*`` variables):

* ``max_queue_size``: a span arriving at a full queue pushes out the oldest, and
  the loss is counted as ``dropped{component="tracer",reason="queue_full"}``. The
  count is of spans really pushed out, under a lock: with several threads ending
  spans at once, checking the length and then appending counted one too many or one
  too few now and then. (The deque itself is unbounded, so nothing leaves it
  uncounted; a thread appending below the bound without the lock while others fill
  the queue could take it past the bound by one span, until the next append at the
  bound trims it.)
* ``max_export_batch_size``: the worker is woken as soon as a batch is queued, and
  exports full batches while there are some;
* ``schedule_delay_ms``: otherwise it exports what is queued (up to a batch) this
  long after its last export;
* ``export_timeout_ms``: the longest a flush or the final export at shutdown waits
  for the worker before it gives up (the exporter's own ``timeout_s`` bounds each
  request);
* ``force_flush`` exports everything queued now; ``shutdown`` stops the worker after
  it exported what was queued, then shuts the exporter down.

When the exporter gives up (:meth:`exporters.otlp.traces.GuardedSpanExporter.give_up`:
stopping ran out of time), the spans still queued are counted as dropped there and
then (:meth:`SpanBatchProcessor.drop_queued`), on the stopping thread: a process that
exits as soon as stop returns has them counted, even while the worker is still
stuck in a request to a hung collector.

The exporter is a :class:`exporters.otlp.traces.GuardedSpanExporter`, or any SDK
``SpanExporter``: one with ``export_records`` gets the tuples, any other gets SDK
``ReadableSpan`` objects. SDK spans ended through the provider's own tracers
(``on_end``) share the queue; a batch's SDK spans go to the exporter's ``export``,
the tracer's to ``export_records``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import repeat
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from telemetry.tracing.spans.record import to_readable
from telemetry.workers import pause_after_failure, report_loop_failure, wait_interval

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.config import BatchConfig

log = logging.getLogger("telemetry.exporters.otlp")

#: The context exports run in: other instrumentation (requests, grpc, urllib3) makes no
#: span of an export, as in the SDK's own batch processor (the same private key).
QUIET = otel_context.set_value(getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY",
                                       "suppress_instrumentation"), True,
                               otel_context.Context())


class SpanBatchProcessor(SpanProcessor):
    """A bounded queue of finished spans and the thread that exports them in batches."""

    def __init__(self, exporter: SpanExporter, batch: BatchConfig, aggregator: Aggregator) -> None:
        self._exporter = exporter
        self._export_records = getattr(exporter, "export_records", None)
        self._aggregator = aggregator
        self._max_queue_size = batch.max_queue_size
        self._batch_size = min(batch.max_export_batch_size, batch.max_queue_size)
        #: Below this many queued spans, one more neither fills a batch nor the queue.
        self._quiet_below = self._batch_size - 1
        self._delay_s = batch.schedule_delay_ms / 1000
        self._timeout_s = batch.export_timeout_ms / 1000
        #: Oldest on the left; an append at the bound trims from the left (counted).
        self._queue: deque[Any] = deque()
        self._bound_lock = threading.Lock()
        #: The queue and that bound: a caller may append a finished span to the queue
        #: itself while it holds fewer spans (all :meth:`emit_record` would do then),
        #: and must call :meth:`emit_record` otherwise.
        self.direct_queue = (self._queue, self._quiet_below)
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._shutdown = False
        #: Whether SDK spans were ever queued (``on_end``): only then may a batch mix them in.
        self._sdk_spans = False
        #: Called before every export and flush: a tracer handles its waiting events.
        self._feeders: tuple[Callable[[], None], ...] = ()
        self._worker = threading.Thread(target=self._work, name="yolo-span-export", daemon=True)
        self._worker.start()
        if hasattr(exporter, "on_give_up"):
            exporter.on_give_up = self.drop_queued

    # -- the sending thread ------------------------------------------------------------

    def emit_record(self, span: tuple) -> None:
        """Queue a finished span (the tracer calls this when a sampled span ends)."""
        queue = self._queue
        if len(queue) < self._quiet_below:  # nearly always: no batch to wake the worker for
            queue.append(span)
            return
        dropped = 0
        with self._bound_lock:  # the check and the append as one, and the count exact
            if self._shutdown and len(queue) >= self._max_queue_size:
                return
            while len(queue) >= self._max_queue_size:  # room first: never over the bound
                try:
                    queue.popleft()
                except IndexError:  # the worker took the rest meanwhile
                    break
                dropped += 1
            queue.append(span)
        if dropped:
            self._aggregator.count_dropped("tracer", "queue_full", dropped)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def span_writer(self, origin: Any) -> Callable[[tuple], bytes] | None:
        """The exporter's writer of a finished span of ``origin`` as it ends, whose bytes
        :meth:`emit_record` then takes in place of the tuple (see
        :meth:`exporters.otlp.fastpath.span_encoding.SpanEncoder.span_writer`); None
        when the exporter has none."""
        make = getattr(self._exporter, "span_writer", None)
        return make(origin) if make is not None and self._export_records is not None else None

    def add_feeder(self, feeder: Callable[[], None]) -> None:
        """Call ``feeder`` before an export on the schedule (not one woken by a full
        batch, which sends only full batches of what is queued) and before a flush: a
        tracer whose events wait to be handled in batches makes their spans then, and
        otherwise the thread that sends them does, as their number grows."""
        self._feeders = (*self._feeders, feeder)

    def remove_feeder(self, feeder: Callable[[], None]) -> None:
        self._feeders = tuple(f for f in self._feeders if f != feeder)

    def _feed(self) -> None:
        for feeder in self._feeders:
            try:
                feeder()
            except Exception:
                log.exception("a span source failed before an export")

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue an SDK span ended through the provider (sampled ones, as the SDK does)."""
        if span.context is not None and span.context.trace_flags.sampled and not self._shutdown:
            self._sdk_spans = True  # from now on batches are checked for them
            self.emit_record(span)  # type: ignore[arg-type]

    # -- the worker --------------------------------------------------------------------

    def _work(self) -> None:
        """The worker's loop. Anything that escapes it (the wait included: a delay too
        long for the platform's clock) is reported as a trace export failure and the
        loop carries on, so a dead worker never leaves spans piling up unnoticed."""
        failures = 0
        while not self._shutdown:
            try:
                woken = wait_interval(self._wake, self._delay_s)
                self._wake.clear()  # before exporting: spans queued meanwhile wake it again
                if self._shutdown:
                    break
                # Woken: full batches only, of the spans queued. Timed out: the waiting
                # events' spans made first (on this thread: their sender is not
                # sending), then what is queued, up to a batch, too.
                if not woken:
                    self._feed()
                self._export(full_only=woken)
                failures = 0
            except Exception as error:
                failures += 1
                report_loop_failure("yolo-span-export", error,
                                    getattr(self._exporter, "status", None), self._aggregator,
                                    first=failures == 1)
                pause_after_failure(self._wake)
        try:
            self._export(full_only=False, drain=True)
        except Exception as error:
            report_loop_failure("yolo-span-export", error,
                                getattr(self._exporter, "status", None), self._aggregator)

    def _export(self, full_only: bool, drain: bool = False,
                deadline: float | None = None) -> bool:
        """Export batches from the queue; False if ``deadline`` passed with spans left."""
        if deadline is None:
            self._export_lock.acquire()
        elif not self._export_lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            return False  # the worker is still busy with a batch
        quiet = otel_context.attach(QUIET)
        try:
            queue, size = self._queue, self._batch_size
            first = True
            while queue and (len(queue) >= size or drain or (first and not full_only)):
                if deadline is not None and time.monotonic() > deadline:
                    return False
                first = False
                # deque.popleft called from C, n times: a third of a comprehension's cost
                batch = list(map(deque.popleft, repeat(queue, min(size, len(queue)))))
                try:
                    self._send(batch)
                except Exception:  # the guarded exporter reports; anything else is logged
                    log.exception("span export failed")
            return True
        finally:
            otel_context.detach(quiet)
            self._export_lock.release()

    def _send(self, batch: list[Any]) -> None:
        if self._export_records is None:
            self._exporter.export([s if type(s) is not tuple else to_readable(s)
                                   for s in batch])
            return
        if self._sdk_spans:  # SDK spans go to the exporter's export, ours alongside
            sdk = [s for s in batch if type(s) is not tuple and type(s) is not bytes]
            if sdk:
                self._exporter.export(sdk)
                batch = [s for s in batch if type(s) is tuple or type(s) is bytes]
                if not batch:
                    return
        self._export_records(batch)

    # -- flush and shutdown ----------------------------------------------------------

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export everything queued now, on the caller's thread."""
        if self._shutdown:
            return False
        timeout_s = self._timeout_s if timeout_millis is None else timeout_millis / 1000
        self._feed()
        return self._export(full_only=False, drain=True,
                            deadline=time.monotonic() + timeout_s)

    def drop_queued(self) -> int:
        """Count every queued span as dropped (``shutdown_timeout``) and forget it;
        returns how many. Called when the exporter gave up, so that stopping accounts
        for them before it returns, whatever the worker is doing."""
        dropped = 0
        while True:
            try:
                self._queue.popleft()
            except IndexError:
                break
            dropped += 1
        if dropped:
            self._aggregator.count_dropped("tracer", "shutdown_timeout", dropped)
        return dropped

    def shutdown(self) -> None:
        """Stop the worker once it exported what is queued (waiting at most
        ``export_timeout_ms``), then shut the exporter down."""
        if self._shutdown:
            return
        self._feed()
        self._shutdown = True
        self._wake.set()
        if self._worker.is_alive() and self._worker is not threading.current_thread():
            self._worker.join(self._timeout_s)
        self._exporter.shutdown()
