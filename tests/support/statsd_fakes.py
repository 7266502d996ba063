"""In-process stand-ins for a StatsD server, for the exporter's unit tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

from exporters.statsd.exporter import StatsdConfig, StatsdExporter
from exporters.statsd.transport import Transport
from telemetry import load_config
from telemetry.aggregation.aggregator import Aggregator
from tests.conftest import send


class UdpSink:
    """A loopback UDP socket standing in for a StatsD server.

    On loopback a datagram is in the receive buffer when ``send`` returns, so
    draining right after a flush sees everything that flush sent.
    """

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.payloads: list[bytes] = []

    def lines(self) -> list[str]:
        while True:
            try:
                self.payloads.append(self.sock.recv(65535))
            except BlockingIOError:
                break
        return [line for payload in self.payloads for line in payload.decode().split("\n")]

    def close(self) -> None:
        self.sock.close()


class FakeTransport(Transport):
    """Records payloads; fails the sends listed in ``fail_on`` (0-based)."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        super().__init__("fake", 0, 1.0)
        self.payloads: list[bytes] = []
        self.fail_on = fail_on or set()
        self.attempts = 0

    def send(self, payload: bytes, deadline: float | None = None) -> None:
        attempt, self.attempts = self.attempts, self.attempts + 1
        if attempt in self.fail_on:
            raise ConnectionRefusedError(111, "Connection refused")
        self.payloads.append(payload)

    def lines(self) -> list[str]:
        return [line for payload in self.payloads for line in payload.decode().split("\n")]


def server_view(lines: list[str]) -> dict[str, dict[str, float]]:
    """What a StatsD server makes of the lines: counter sums, last gauges, timer counts."""
    view: dict[str, dict[str, float]] = {"c": {}, "g": {}, "ms": {}}
    for line in lines:
        name, *samples = line.split(":")  # several values may share one line
        for sample in samples:
            value, kind, *extra = sample.split("|")
            rate = float(extra[0][1:]) if extra and extra[0].startswith("@") else 1.0
            if kind == "c":
                view["c"][name] = view["c"].get(name, 0.0) + float(value) / rate
            elif kind == "g":
                view["g"][name] = float(value)
            else:
                view["ms"][name] = view["ms"].get(name, 0.0) + 1 / rate
    return view


class TcpSink:
    """A loopback TCP server that collects newline-terminated lines."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.received: list[str] = []
        self.connections: list[socket.socket] = []
        self._buffer = b""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            with self._lock:
                self.received.extend(line.decode() for line in complete if line)

    def wait_for(self, line: str, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if line in self.received:
                    return True
            time.sleep(0.01)
        return False

    def drop_connections(self) -> None:
        for conn in self.connections:
            if conn.fileno() != -1:
                conn.shutdown(socket.SHUT_RDWR)  # sends FIN even while a reader is blocked
                conn.close()

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.drop_connections()


HANDOFF = "yolo.handoffs.from_agent.pm.to_agent.dev"


def exporter_factory(aggregator: Aggregator) -> Iterator:
    """Body of a ``make_exporter`` fixture: builds started exporters, stops them after."""
    made: list[StatsdExporter] = []

    def make(agg: Aggregator | None = None, **settings: object) -> StatsdExporter:
        settings.setdefault("flush_interval_s", 3600)  # tests flush by hand
        exporter = StatsdExporter(StatsdConfig(enabled=True, **settings), agg or aggregator,
                                  load_config({}, environ={}))
        exporter.start()
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.stop(1.0)


def udp_sink() -> Iterator[UdpSink]:
    """Body of a ``sink`` fixture."""
    server = UdpSink()
    yield server
    server.close()


def handoffs(n: int, duration_s: float = 0.2) -> None:
    for _ in range(n):
        send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=duration_s)
