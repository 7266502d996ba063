"""Scrapers that are many, or slow: /metrics must serve them all without stalling
anyone else, and the orchestrator's signals must not wait on any of them.

Every connection has its own thread and a scrape copies the aggregates under the lock
before rendering, so neither a crowd of scrapers nor one that reads a byte at a time
(or never finishes its request, or never starts its TLS handshake) can hold up the
others or a sender.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from telemetry import Telemetry
from tests.conftest import send
from tests.support.backends import prometheus_server, promtool_check_metrics, wait_until
from tests.support.faults import TimedOrchestrator, record

SERVER_MODULE = str(Path("telemetry", "serving", "server.py"))


def totals(text: str) -> dict[str, float]:
    """Sums of the samples of a few families in one exposition."""
    wanted = {"yolo_handoffs_total": 0.0, "yolo_handoff_duration_seconds_count": 0.0,
              "yolo_decisions_total": 0.0, "yolo_decision_duration_seconds_count": 0.0,
              "yolo_telemetry_events_total": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                wanted[sample.name] += sample.value
    return wanted


class Scraper(threading.Thread):
    """GETs one URL in a loop; checks each answer and keeps timings and the last body."""

    def __init__(self, url: str, check: Callable[[str], None] | None = None,
                 context: ssl.SSLContext | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.check, self.context = url, check, context
        self.stopping = threading.Event()
        self.count = 0
        self.max_s = 0.0
        self.errors: list[BaseException] = []
        self.last = ""

    def fetch(self) -> str:
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if self.context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self.context))
        try:
            with urllib.request.build_opener(*handlers).open(self.url, timeout=10) as response:
                return response.read().decode()
        except urllib.error.HTTPError as error:
            # /health answers 503 while an agent's context is critical; still a document
            if error.code != 503 or not self.url.endswith("/health"):
                raise
            return json.dumps(json.load(error))

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.perf_counter()
            try:
                body = self.fetch()
                if self.check is not None:
                    self.check(body)
            except BaseException as error:  # reported by the test
                self.errors.append(error)
                return
            self.max_s = max(self.max_s, time.perf_counter() - started)
            self.count += 1
            self.last = body


def consistent_and_monotonic() -> Callable[[str], None]:
    """A check for one scraper: each scrape is internally consistent (the counter and
    the histogram count are updated under one lock and copied under it) and no
    counter goes backwards between this scraper's scrapes."""
    previous: dict[str, float] = {}

    def check(text: str) -> None:
        seen = totals(text)
        assert seen["yolo_handoffs_total"] == seen["yolo_handoff_duration_seconds_count"]
        assert seen["yolo_decisions_total"] == seen["yolo_decision_duration_seconds_count"]
        for name, value in seen.items():
            assert value >= previous.get(name, 0.0), name
        previous.update(seen)

    return check


@pytest.mark.backend
def test_concurrent_scrapers_and_prometheus_while_events_flow(
        tmp_path: Path, start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry()
    scrapers = [Scraper(f"{tel.url}/metrics", consistent_and_monotonic()) for _ in range(3)]
    scrapers.append(Scraper(f"{tel.url}/health"))
    # The reference orchestrator's LLM and tool calls double the exposition (some 1,600
    # lines); with a sender flat out and three other scrapers on a loaded 2-core
    # machine a scrape took up to 230 ms, past a 200 ms interval (and timeout).
    with prometheus_server(tmp_path, [f"127.0.0.1:{tel.server.port}"],
                           scrape_interval="500ms") as prometheus:
        prometheus.wait_for_targets_up(1)
        orchestrator = TimedOrchestrator(seed=41)
        with orchestrator.running():
            orchestrator.phase = "scraped"
            for scraper in scrapers:
                scraper.start()
            wait_until(lambda: min(s.count for s in scrapers) >= 20 and
                       orchestrator.stats.events >= 30_000, timeout=60,
                       what="scrapes and events")
            for scraper in scrapers:
                scraper.stopping.set()
            for scraper in scrapers:
                scraper.join(30)
        for scraper in scrapers:
            assert not scraper.errors, scraper.errors[0]
        agent, system = tel.snapshot()
        prometheus.wait_for(f"sum(yolo_handoffs_total) == {agent.handoffs_total}")
        assert prometheus.query_value("sum(yolo_decisions_total)") == agent.decisions_made
        assert prometheus.query_value("sum(yolo_telemetry_events_total)") == system.events_total
        assert prometheus.query_value('min_over_time(up{job="yolo"}[1m])') == 1
        scrape_max = prometheus.query_value('max_over_time(scrape_duration_seconds[1m])')
    ok, output = promtool_check_metrics(scrapers[0].last)
    assert ok, output
    latency = orchestrator.latency("scraped")
    latency.assert_bounded()
    record("concurrent scrapers", events=orchestrator.stats.events,
           scrapes={"metrics": sum(s.count for s in scrapers[:3]), "health": scrapers[3].count},
           slowest_scrape_ms=round(max(s.max_s for s in scrapers) * 1000, 1),
           prometheus_max_scrape_ms=round((scrape_max or 0) * 1000, 1),
           send_latency=latency.as_dict())


def _many_series(count: int = 100) -> None:
    """Enough series for a /metrics body many times the (shrunk) socket buffers."""
    for number in range(count):
        send("handoff_completed", from_agent=f"agent-{number}", to_agent="qa", duration_s=0.1)


def handler_threads(function: str, module: str) -> int:
    """Threads of this process currently inside ``function`` of ``module``."""
    count = 0
    for frame in sys._current_frames().values():
        while frame is not None:
            code = frame.f_code
            if code.co_name == function and code.co_filename.endswith(module):
                count += 1
                break
            frame = frame.f_back
    return count


def handler_threads_writing() -> int:
    """Server threads blocked sending a response: the slow reader's."""
    return handler_threads("_send", SERVER_MODULE)


def handler_threads_reading() -> int:
    """Server threads waiting for a request line: the idle and half-sent clients'."""
    return handler_threads("handle_one_request", str(Path("http", "server.py")))


def test_slow_clients_do_not_block_other_scrapes_or_senders(
        start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry(limits={"max_series_per_metric": 1000})
    _many_series()
    port = tel.server.port
    # Small kernel buffers on both ends (accepted sockets inherit the listener's), so
    # the slow reader's handler thread really blocks in write: with autotuned buffers
    # the kernel would take the whole body and no thread would be held at all.
    tel.server._httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    # 1. reads one small chunk a while and then stops reading: its handler thread is
    #    stuck writing the rest of a large body
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect(("127.0.0.1", port))
    reader.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    first = reader.recv(1024)
    assert first.startswith(b"HTTP/1.1 200")
    # 2. sends half a request line and nothing more (slowloris)
    idle = socket.create_connection(("127.0.0.1", port))
    idle.sendall(b"GET /met")
    # 3. connects and sends nothing at all
    silent = socket.create_connection(("127.0.0.1", port))
    try:
        # the slow reader's thread is stuck writing the rest of a large body (until the
        # kernel lets its send buffer grow), the other two wait for a request line
        wait_until(handler_threads_writing, timeout=10,
                   what="the slow reader's handler to block in write")
        started = time.perf_counter()
        assert "yolo_handoffs_total" in Scraper(f"{tel.url}/metrics").fetch()
        beside_writer = time.perf_counter() - started
        orchestrator = TimedOrchestrator(seed=42)
        with orchestrator.running():
            orchestrator.phase = "slow clients"
            scraper = Scraper(f"{tel.url}/metrics", consistent_and_monotonic())
            health = Scraper(f"{tel.url}/health")
            scraper.start()
            health.start()
            wait_until(lambda: scraper.count >= 10 and health.count >= 10
                       and orchestrator.stats.events >= 20_000, timeout=60,
                       what="scrapes beside the slow clients")
            scraper.stopping.set()
            health.stopping.set()
            scraper.join(30)
            health.join(30)
        still_waiting = handler_threads_reading()
    finally:
        for sock in (reader, idle, silent):
            sock.close()
    assert not scraper.errors and not health.errors, (scraper.errors, health.errors)
    body = len(scraper.last.encode())
    assert body > 100_000
    assert beside_writer < 2.0, beside_writer
    assert still_waiting >= 2  # the idle clients held their threads throughout
    assert scraper.max_s < 2.0 and health.max_s < 2.0, (scraper.max_s, health.max_s)
    latency = orchestrator.latency("slow clients")
    latency.assert_bounded()
    record("slow clients", body_bytes=body,
           scrape_beside_blocked_writer_ms=round(beside_writer * 1000, 1),
           scrapes=scraper.count, slowest_scrape_ms=round(scraper.max_s * 1000, 1),
           send_latency=latency.as_dict())


def test_a_client_that_never_starts_tls_does_not_block_the_server(
        tls_telemetry: tuple[Telemetry, ssl.SSLContext]) -> None:
    """The TLS handshake happens on the connection's own thread, not in accept()."""
    tel, client = tls_telemetry
    silent = [socket.create_connection(("127.0.0.1", tel.server.port)) for _ in range(3)]
    try:
        scraper = Scraper(f"{tel.url}/metrics", context=client)
        started = time.perf_counter()
        body = scraper.fetch()
        elapsed = time.perf_counter() - started
    finally:
        for sock in silent:
            sock.close()
    assert "yolo_handoffs_total" in body
    assert elapsed < 2.0, elapsed
