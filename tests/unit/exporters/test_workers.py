"""Background loops outlive what goes wrong in them, the wait included, and say so
in /health: the periodic exporter worker, the span batch worker, the alert webhook."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from exporters.otlp.batch import SpanBatchProcessor
from telemetry import catalogue as cat
from telemetry import workers
from telemetry.aggregation.aggregator import Aggregator
from telemetry.config import BatchConfig
from telemetry.workers import ExporterStatus, PeriodicWorker, wait_interval
from tests.support.backends import wait_until
from tests.unit.alerting.test_webhook import Receiver, notifier_for
from tests.unit.exporters.otlp.test_batch import Records, span

#: Every wait is bounded by this, so a dead thread fails the test instead of hanging it.
DEADLINE_S = 10.0


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry after a loop failure at once rather than after a second."""
    monkeypatch.setattr(workers, "RETRY_AFTER_FAILURE_S", 0.01)


class FlakyEvent(threading.Event):
    """An Event whose first ``failures`` waits raise, as a wait too long for the
    platform's clock does (OverflowError)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def wait(self, timeout: float | None = None) -> bool:
        if self.failures:
            self.failures -= 1
            raise OverflowError("timestamp out of range for platform time_t")
        return super().wait(timeout)


def test_wait_interval_waits_any_interval() -> None:
    event = threading.Event()
    assert wait_interval(event, 0.01) is False
    event.set()
    assert wait_interval(event, math.inf) is True  # Event.wait(inf) raises OverflowError
    assert wait_interval(event, 1e300) is True
    with pytest.raises(ValueError, match="NaN"):
        wait_interval(event, math.nan)


def test_an_infinite_interval_does_not_kill_the_worker() -> None:
    worker = PeriodicWorker("test-inf", math.inf, lambda: None)
    worker.start()
    try:
        # Before, the first wait raised and the thread was gone at once.
        assert not worker._thread.join(0.2) and worker.alive
    finally:
        worker.stop(DEADLINE_S)
    assert not worker.alive  # and stopping still ends it at once


def test_a_failing_wait_is_reported_and_the_worker_carries_on(aggregator: Aggregator) -> None:
    status = ExporterStatus("test")
    ran = threading.Event()
    worker = PeriodicWorker("test-wait", 0.01, ran.set, status, aggregator)
    worker._stopping = FlakyEvent(failures=2)
    worker.start()
    try:
        assert ran.wait(DEADLINE_S), "the worker died on its failing wait"
        # the second failing wait is the pause after the first failure: it sleeps instead
        assert status.failures == 1
        assert status.last_error == "OverflowError: timestamp out of range for platform time_t"
        assert aggregator.value(cat.EXPORTER_ERRORS, ("test",)) == 1
    finally:
        worker.stop(DEADLINE_S)


def test_a_raising_action_is_failing_in_health_until_it_recovers(aggregator: Aggregator) -> None:
    status = ExporterStatus("test")
    calls: list[int] = []
    recovered = threading.Event()

    def action() -> None:
        calls.append(1)
        if len(calls) <= 3:
            raise RuntimeError(f"broken {len(calls)}")
        status.succeeded()
        recovered.set()

    worker = PeriodicWorker("test-action", 0.01, action, status, aggregator)
    worker.start()
    try:
        wait_until(lambda: status.failures >= 1, DEADLINE_S, what="the first failure")
        assert status.as_dict()["last_error"].startswith("RuntimeError: broken")
        assert recovered.wait(DEADLINE_S), "the worker stopped after a failing action"
        assert status.failures == 3
        assert status.state == "ok"
    finally:
        worker.stop(DEADLINE_S)


def test_the_span_worker_survives_a_schedule_delay_beyond_the_clock(
        aggregator: Aggregator) -> None:
    """``tracing.batch.schedule_delay_ms`` has no upper bound: 10**20 ms made the
    worker's first wait raise, and spans piled up unexported for ever."""
    exporter = Records()
    processor = SpanBatchProcessor(exporter, BatchConfig(max_export_batch_size=2,
                                                         schedule_delay_ms=10**20), aggregator)
    try:
        processor.emit_record(span(1))
        processor.emit_record(span(2))  # a full batch wakes the worker
        wait_until(lambda: exporter.batches, DEADLINE_S, what="the batch (is the worker dead?)")
        assert exporter.ids() == [1, 2]
    finally:
        processor.shutdown()


def test_a_failure_in_the_span_worker_loop_is_reported_and_it_carries_on(
        aggregator: Aggregator) -> None:
    exporter = Records()
    exporter.status = ExporterStatus("otlp")  # as the guarded exporter has
    processor = SpanBatchProcessor(exporter, BatchConfig(max_export_batch_size=2,
                                                         schedule_delay_ms=10), aggregator)
    try:
        processor._wake = FlakyEvent(failures=1)
        processor._wake.set()  # the old Event's wait returns; the next wait is the flaky one
        processor.emit_record(span(1))
        processor.emit_record(span(2))
        wait_until(lambda: exporter.batches, DEADLINE_S, what="the batch (is the worker dead?)")
        assert exporter.status.as_dict()["last_error"].startswith("OverflowError")
    finally:
        processor.shutdown()


def test_the_webhook_thread_survives_an_infinite_backoff(aggregator: Aggregator) -> None:
    """``backoff_s: inf``: the retry wait raised and the thread died, so the failed
    notification and every later one were never sent nor counted."""
    receiver = Receiver()
    receiver.status = 500
    notifier = notifier_for(receiver.url, aggregator, backoff_s=math.inf,
                            max_backoff_s=math.inf, max_retries=2)
    notifier.start()
    try:
        notifier.enqueue({"n": 1})
        receiver.wait_for(1)
        assert not notifier._thread.join(0.2) and notifier._thread.is_alive()
    finally:
        notifier.stop(DEADLINE_S)
        receiver.close()
    # stopping woke the wait: one last attempt, then the notification is counted dropped
    assert not notifier._thread.is_alive()
    assert receiver.requests == 2
    assert aggregator.value(cat.DROPPED, ("alert_webhook", "send_failed")) == 1
    assert notifier.health()["status"] == "failing"


def test_a_bug_delivering_one_notification_loses_only_that_one(
        aggregator: Aggregator, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver()
    notifier = notifier_for(receiver.url, aggregator)
    notifier.start()
    try:
        notifier.enqueue({"unserialisable": object()})  # json.dumps raises TypeError
        notifier.enqueue({"n": 2})
        assert receiver.wait_for(1) == [{"n": 2}]
    finally:
        notifier.stop(DEADLINE_S)
        receiver.close()
    health: dict[str, Any] = notifier.health()
    assert health["last_error"].startswith("TypeError")
    assert aggregator.value(cat.DROPPED, ("alert_webhook", "send_failed")) == 1
