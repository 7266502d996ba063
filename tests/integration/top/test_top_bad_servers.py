"""``yolo-telemetry top`` against servers that refuse, hang, or answer garbage.

A real HTTP server on loopback plays a telemetry server that misbehaves on demand
(its good answers are the recorded ones of the demo). Each failure must become a
reading with an error (never an exception, never a wait past the timeout), the view
must say so and keep running, and it must recover when the server answers again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from telemetry.top.app import TopApp
from telemetry.top.scrape import ScrapeSource
from tests.integration.top.test_top_live import shown_text, until
from tests.support.backends import free_port
from tests.unit.top.recorded import FIXTURES

GOOD = {"/metrics": (FIXTURES / "loop" / "1.metrics").read_bytes(),
        "/health": (FIXTURES / "loop" / "1.health.json").read_bytes()}
TIMEOUT_S = 0.5


class Misbehaving:
    """An HTTP server on ``port`` that answers as ``mode`` says."""

    def __init__(self, port: int) -> None:
        self.port, self.mode = port, "good"
        self.release = threading.Event()  # ends hanging requests
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.answer(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        if self.mode == "hang":
            self.release.wait(30)
            return
        if self.mode == "reset":
            request.close_connection = True
            request.connection.close()
            return
        if self.mode == "error":
            request.send_error(500)
            return
        body = {"good": GOOD.get(path, b""),
                "garbage": b"\x00\xff{{ this is not an exposition\nyolo_x{a=} 1 2 3\n",
                "truncated": GOOD.get(path, b"")[:len(GOOD.get(path, b"")) // 2],
                "health-garbage": GOOD["/metrics"] if path == "/metrics" else b"[1, 2",
                }[self.mode]
        request.send_response(200 if body else 404)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Misbehaving]:
    running = Misbehaving(free_port())
    yield running
    running.stop()


def _read(server: Misbehaving) -> tuple[str | None, bool, float]:
    source = ScrapeSource([f"http://127.0.0.1:{server.port}"], timeout_s=TIMEOUT_S)
    started = time.monotonic()
    (reading,) = source.read()
    return reading.error, reading.ok, time.monotonic() - started


@pytest.mark.parametrize(("mode", "expected", "has_samples"), [
    ("good", None, True),
    ("garbage", "/metrics: unreadable answer", False),
    ("error", "/metrics: HTTP 500", False),
    ("reset", "/metrics:", False),
    ("hang", "/metrics: no answer", False),
    ("health-garbage", "/health: unreadable answer", True),
])
def test_each_failure_is_a_reading_with_its_reason(server: Misbehaving, mode: str,
                                                   expected: str | None,
                                                   has_samples: bool) -> None:
    server.mode = mode
    error, ok, took = _read(server)
    if expected is None:
        assert error is None
    else:
        assert error is not None and expected in error, error
    assert ok is has_samples
    assert took < TIMEOUT_S + 2.0  # both routes at once, each bounded by the timeout


def test_a_truncated_exposition_is_read_as_far_as_it_goes_or_refused() -> None:
    running = Misbehaving(free_port())
    try:
        running.mode = "truncated"
        error, ok, _ = _read(running)
        assert ok or (error and "/metrics" in error)  # never an exception
    finally:
        running.stop()


def test_a_refused_connection_is_a_reading_with_its_reason() -> None:
    source = ScrapeSource([f"http://127.0.0.1:{free_port()}"], timeout_s=TIMEOUT_S)
    (reading,) = source.read()
    assert not reading.ok and "connection refused" in (reading.error or "")


def test_the_view_says_the_connection_is_lost_keeps_running_and_recovers(
        server: Misbehaving) -> None:
    port = server.port
    app = TopApp(ScrapeSource([f"http://127.0.0.1:{port}"], timeout_s=TIMEOUT_S),
                 interval_s=0.2)
    current = {"server": server}

    def lost(why: str) -> bool:
        header = shown_text(app, "#header")
        return "connection lost" in header and why in header and "0/1 up" in header

    def recovered() -> bool:
        header = shown_text(app, "#header")
        return "connection lost" not in header and "1/1 up" in header

    async def drive() -> None:
        async with app.run_test(size=(150, 50)) as pilot:
            await until(pilot, recovered, what="the first good frame")
            agents = app.shown_agents()
            assert agents
            for mode, why in (("garbage", "unreadable"), ("error", "HTTP 500"),
                              ("hang", "no answer"), ("reset", "/metrics")):
                current["server"].mode = mode
                await until(pilot, lambda why=why: lost(why), what=f"{mode} shown")
                assert app.return_code is None and app.problem is None
                assert app.shown_agents() == agents  # the last good data stays
                current["server"].mode = "good"
                await until(pilot, recovered, what=f"recovery after {mode}")
            current["server"].stop()  # refused: nothing listens on the port
            await until(pilot, lambda: lost("connection refused"), what="refused shown")
            current["server"] = Misbehaving(port)
            await until(pilot, recovered, what="recovery after a restart")
            await pilot.press("q")
        assert app.return_code == 0

    try:
        asyncio.run(drive())
    finally:
        if current["server"] is not server:
            current["server"].stop()
