"""The alert webhook: Alertmanager's format, bounded retries, never blocking."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.alerting.definitions import AlertDefinition, WebhookConfig
from telemetry.alerting.evaluator import AlertEvaluator
from telemetry.alerting.webhook import WebhookNotifier
from tests.conftest import FakeClock, send


class Receiver:
    """A local HTTP endpoint that records POSTed JSON; status and delay are settable."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        self.status = 200
        self.release = threading.Event()
        self.release.set()
        self.received = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.release.wait(10)
                with receiver.received:
                    receiver.requests += 1
                    receiver.bodies.append(json.loads(body))
                    receiver.received.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.received:
            assert self.received.wait_for(lambda: self.requests >= count, timeout), (
                f"expected {count} requests, got {self.requests}")
            return list(self.bodies)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


OVERFLOW = AlertDefinition.model_validate({
    "name": "ContextOverflow", "metric": "yolo.context.tokens", "threshold": 9000,
    "by": ["agent"], "severity": "critical", "summary": "{{ $labels.agent }} is full",
    "description": "{{ $value }} tokens"})


def notifier_for(url: str, aggregator: Aggregator, **settings: Any) -> WebhookNotifier:
    config = WebhookConfig(enabled=True, url=url, **settings)
    return WebhookNotifier(config, aggregator, external_url="http://127.0.0.1:9464",
                           receiver="yolo")


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_firing_and_resolved_alerts_are_posted_in_alertmanager_format(
        aggregator: Aggregator, clock: FakeClock, receiver: Receiver) -> None:
    notifier = notifier_for(receiver.url, aggregator)
    evaluator = AlertEvaluator([OVERFLOW], aggregator, notifier=notifier, clock=clock)
    notifier.start()
    try:
        send("context_updated", agent="dev", items=1, tokens=9500)
        evaluator.evaluate()
        firing = receiver.wait_for(1)[0]
        assert {k: firing[k] for k in ("version", "status", "receiver", "groupLabels",
                                       "groupKey", "truncatedAlerts", "externalURL")} == {
            "version": "4", "status": "firing", "receiver": "yolo",
            "groupLabels": {"alertname": "ContextOverflow"},
            "groupKey": '{}:{alertname="ContextOverflow"}', "truncatedAlerts": 0,
            "externalURL": "http://127.0.0.1:9464"}
        (item,) = firing["alerts"]
        assert item["status"] == "firing"
        assert item["labels"] == {"alertname": "ContextOverflow", "severity": "critical",
                                  "agent": "dev"}
        assert item["annotations"] == {"summary": "dev is full", "description": "9500 tokens"}
        assert item["endsAt"] == "0001-01-01T00:00:00Z"
        assert item["startsAt"].endswith("Z") and len(item["fingerprint"]) == 16
        assert firing["commonLabels"] == item["labels"]

        clock.advance(1)
        evaluator.evaluate()  # still firing, nothing changed: no message
        send("context_updated", agent="dev", items=1, tokens=10)
        clock.advance(1)
        evaluator.evaluate()
        resolved = receiver.wait_for(2)[1]
        assert resolved["status"] == "resolved"
        assert resolved["alerts"][0]["status"] == "resolved"
        assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        assert resolved["alerts"][0]["fingerprint"] == item["fingerprint"]
        assert receiver.requests == 2
        assert notifier.health()["status"] == "ok"
    finally:
        notifier.stop(2)


def test_a_failing_receiver_gets_a_bounded_number_of_attempts(
        aggregator: Aggregator, receiver: Receiver) -> None:
    receiver.status = 500
    notifier = notifier_for(receiver.url, aggregator, max_retries=2, backoff_s=0.01)
    notifier.start()
    try:
        notifier.enqueue({"version": "4", "alerts": []})
        wait_until(lambda: aggregator.value(cat.DROPPED, ("alert_webhook", "send_failed")))
        assert receiver.requests == 3  # the first attempt and two retries, no more
        assert aggregator.value(cat.EXPORTER_ERRORS, ("alert_webhook",)) == 1
        health = notifier.health()
        assert (health["status"], health["dropped"], health["sent"]) == ("failing", 1, 0)
        assert "HTTP Error 500" in health["last_error"]
    finally:
        notifier.stop(2)


def test_a_hanging_receiver_never_blocks_the_evaluator(
        aggregator: Aggregator, clock: FakeClock, receiver: Receiver) -> None:
    receiver.release.clear()  # the receiver accepts and then hangs
    notifier = notifier_for(receiver.url, aggregator, timeout_s=0.2, max_retries=0)
    evaluator = AlertEvaluator([OVERFLOW], aggregator, notifier=notifier, clock=clock)
    notifier.start()
    try:
        send("context_updated", agent="dev", items=1, tokens=9500)
        slowest = 0.0
        for agent_number in range(5):
            send("context_updated", agent=f"a{agent_number}", items=1, tokens=9999)
            clock.advance(1)
            started = time.perf_counter()
            evaluator.evaluate()
            slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 0.15, slowest  # well under the 0.2s HTTP timeout
        wait_until(lambda: aggregator.value(cat.DROPPED, ("alert_webhook", "send_failed")))
        assert "timed out" in notifier.health()["last_error"]
    finally:
        receiver.release.set()
        notifier.stop(2)


def test_a_full_queue_drops_and_counts(aggregator: Aggregator, receiver: Receiver) -> None:
    receiver.release.clear()
    notifier = notifier_for(receiver.url, aggregator, queue_size=1, timeout_s=5)
    notifier.start()
    try:
        for _ in range(5):
            notifier.enqueue({"version": "4", "alerts": []})
        # One is in flight, one waits in the queue; the others were dropped at once.
        assert aggregator.value(cat.DROPPED, ("alert_webhook", "queue_full")) >= 3
    finally:
        receiver.release.set()
        notifier.stop(2)


def test_stopping_is_bounded_even_with_a_hanging_receiver(
        aggregator: Aggregator, receiver: Receiver) -> None:
    receiver.release.clear()
    notifier = notifier_for(receiver.url, aggregator, timeout_s=30)
    notifier.start()
    notifier.enqueue({"version": "4", "alerts": []})
    receiver_saw_nothing_yet = receiver.requests == 0
    started = time.monotonic()
    notifier.stop(0.3)
    assert time.monotonic() - started < 1.0
    assert receiver_saw_nothing_yet
    receiver.release.set()


class Capture(WebhookNotifier):
    """Keeps payloads instead of sending them, to test when messages are due."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(WebhookConfig(enabled=True, **settings), Aggregator())
        self.payloads: list[dict[str, Any]] = []

    def enqueue(self, payload: dict[str, Any]) -> None:
        self.payloads.append(payload)


def test_still_firing_alerts_are_repeated_and_resolved_ones_sent_only_if_asked(
        clock: FakeClock) -> None:
    aggregator = Aggregator(clock=clock)
    aggregator.connect()
    try:
        capture = Capture(repeat_interval_s=60, send_resolved=False)
        evaluator = AlertEvaluator([OVERFLOW], aggregator, notifier=capture, clock=clock,
                                   wall_clock=clock)
        send("context_updated", agent="dev", items=1, tokens=9500)
        evaluator.evaluate()
        for _ in range(5):
            clock.advance(20)
            evaluator.evaluate()
        # sent at 0s, then again at 60s; 100s is not yet due
        assert [p["status"] for p in capture.payloads] == ["firing", "firing"]
        send("context_updated", agent="dev", items=1, tokens=1)
        clock.advance(20)
        evaluator.evaluate()
        assert len(capture.payloads) == 2  # send_resolved is off
    finally:
        aggregator.disconnect()
