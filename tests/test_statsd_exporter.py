"""The StatsD exporter against in-process fakes: deltas, gauges, sampled timers,
packing, failures and recovery, stop. The real daemon is in test_statsd_daemon.py."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from exporters.statsd import StatsdConfig, StatsdExporter
from exporters.statsd_transport import Transport
from telemetry import catalogue as cat
from telemetry import load_config
from telemetry.aggregator import Aggregator
from telemetry.simulator import ReferenceOrchestrator

from .conftest import FakeClock, send

HANDOFF = "yolo.handoffs.from_agent.pm.to_agent.dev"


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
        name, rest = line.split(":", 1)
        value, kind, *extra = rest.split("|")
        rate = float(extra[0][1:]) if extra and extra[0].startswith("@") else 1.0
        if kind == "c":
            view["c"][name] = view["c"].get(name, 0.0) + float(value) / rate
        elif kind == "g":
            view["g"][name] = float(value)
        else:
            view["ms"][name] = view["ms"].get(name, 0.0) + 1 / rate
    return view


@pytest.fixture
def sink() -> Iterator[UdpSink]:
    server = UdpSink()
    yield server
    server.close()


@pytest.fixture
def make_exporter(aggregator: Aggregator) -> Iterator:
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


def handoffs(n: int, duration_s: float = 0.2) -> None:
    for _ in range(n):
        send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=duration_s)


def test_counters_are_sent_as_deltas_since_the_last_flush(make_exporter, sink) -> None:
    exporter = make_exporter(port=sink.port)
    handoffs(3)
    assert exporter.flush()
    assert f"{HANDOFF}:3|c" in sink.lines()
    sink.payloads.clear()
    handoffs(2)
    assert exporter.flush()
    assert f"{HANDOFF}:2|c" in sink.lines()
    sink.payloads.clear()
    assert exporter.flush()
    assert not [line for line in sink.lines() if line.startswith(HANDOFF + ":")]


def test_gauges_are_sent_when_changed_or_always_if_configured(
        aggregator: Aggregator, make_exporter, sink) -> None:
    changed = make_exporter(port=sink.port)
    send("context_updated", agent="pm", items=3, tokens=1200)
    changed.flush()
    assert "yolo.context.tokens.agent.pm:1200|g" in sink.lines()
    sink.payloads.clear()
    changed.flush()
    assert not [line for line in sink.lines() if line.startswith("yolo.context.tokens")]
    send("context_updated", agent="pm", items=3, tokens=1500)
    changed.flush()
    assert "yolo.context.tokens.agent.pm:1500|g" in sink.lines()

    always = make_exporter(port=sink.port, send_all_gauges=True)
    always.flush()
    sink.payloads.clear()
    always.flush()
    assert "yolo.context.tokens.agent.pm:1500|g" in sink.lines()
    assert "yolo.agents.active:0|g" in sink.lines()


def test_timers_are_milliseconds_with_a_rate_that_restores_the_true_count(
        make_exporter, sink) -> None:
    exporter = make_exporter(port=sink.port, reservoir_size=5)
    handoffs(50, duration_s=0.25)
    send("decision_made", agent="pm", decision_type="scope", duration_s=1.5)
    exporter.flush()
    lines = sink.lines()
    timer = [line for line in lines if "|ms" in line and line.startswith("yolo.handoff.duration")]
    assert timer == ["yolo.handoff.duration.from_agent.pm.to_agent.dev:250|ms|@0.1"] * 5
    assert "yolo.decision.duration.agent.pm:1500|ms" in lines  # not sampled: no rate
    assert server_view(lines)["ms"]["yolo.handoff.duration.from_agent.pm.to_agent.dev"] == (
        pytest.approx(50))
    sink.payloads.clear()
    exporter.flush()  # the reservoirs were handed over: nothing is sent twice
    assert not [line for line in sink.lines() if "|ms" in line]


def test_a_purged_and_recreated_counter_restarts_from_zero(clock: FakeClock, sink) -> None:
    agg = Aggregator(clock=clock, stale_after_s=10)
    agg.connect()
    exporter = StatsdExporter(StatsdConfig(enabled=True, port=sink.port, flush_interval_s=3600),
                              agg, load_config({}, environ={}))
    exporter.start()
    try:
        handoffs(5)
        exporter.flush()
        clock.advance(20)
        agg.collect()  # purges the idle series between two flushes
        handoffs(2)
        sink.payloads.clear()
        exporter.flush()
        assert f"{HANDOFF}:2|c" in sink.lines()
        clock.advance(20)
        exporter.flush()  # purged during this flush's own collection
        handoffs(1)
        sink.payloads.clear()
        exporter.flush()
        assert f"{HANDOFF}:1|c" in sink.lines()
    finally:
        exporter.stop(1.0)
        agg.disconnect()


def test_failed_datagrams_keep_their_deltas_and_sent_ones_are_not_resent(
        aggregator: Aggregator, make_exporter) -> None:
    exporter = make_exporter(max_packet_bytes=120, reservoir_size=4)
    fake = exporter._transport = FakeTransport(fail_on={2, 3})
    ReferenceOrchestrator(seed=3).run(workflows=3)
    assert not exporter.flush()  # datagrams 0, 1 go out, 2 fails
    assert exporter.health()["status"] == "failing"
    ReferenceOrchestrator(seed=4).run(workflows=2)
    assert not exporter.flush()  # the first attempt of this flush (3) fails
    assert exporter.flush()
    assert exporter.health()["status"] == "ok"
    assert max(len(p) for p in fake.payloads) <= 120
    view = server_view(fake.lines())
    for family in aggregator.collect([cat.HANDOFFS, cat.DECISIONS, cat.ERRORS]):
        for sample in family.samples:
            name = ".".join([family.spec.statsd_name("yolo"),
                             *(f"{k}.{v}" for k, v in zip(family.spec.labels, sample.labels,
                                                          strict=True))])
            assert view["c"][name] == sample.value, name
    durations = aggregator.collect([cat.DECISION_DURATION])[0]
    for sample in durations.samples:
        name = f"yolo.decision.duration.agent.{sample.labels[0]}"
        assert view["ms"][name] == pytest.approx(sample.value.count)
    assert aggregator.value(cat.EXPORTER_ERRORS, ("statsd",)) == 2


def test_carried_timer_lines_are_bounded_and_the_excess_counted(
        aggregator: Aggregator, make_exporter) -> None:
    exporter = make_exporter(max_pending_lines=3)
    exporter._transport = FakeTransport(fail_on={0})
    handoffs(10)
    assert not exporter.flush()
    assert exporter.health()["pending_timer_lines"] == 3
    assert aggregator.value(cat.DROPPED, ("statsd", "backlog_full")) == 7


def test_server_down_then_up_counts_errors_and_delivers_the_deltas(
        aggregator: Aggregator, make_exporter, start_telemetry) -> None:
    probe = UdpSink()
    port = probe.port
    probe.close()  # nothing listens there now: the kernel answers "port unreachable"
    tel = start_telemetry({"exporters": {"statsd": {"enabled": True, "port": port,
                                                    "flush_interval_s": 3600}}})
    exporter = tel.exporters["statsd"]
    handoffs(4)
    assert not exporter.flush()
    assert not exporter.flush()
    check = tel.health()["checks"]["exporter:statsd"]
    assert check["status"] == "failing" and "ConnectionRefused" in check["last_error"]
    assert tel.health()["status"] == "degraded"
    assert tel.aggregator.value(cat.EXPORTER_ERRORS, ("statsd",)) == 2

    server = UdpSink(port)
    try:
        handoffs(1)
        assert exporter.flush()
        assert f"{HANDOFF}:5|c" in server.lines()
        assert tel.health()["checks"]["exporter:statsd"]["status"] == "ok"
    finally:
        server.close()


def test_stop_flushes_what_is_pending(make_exporter, sink) -> None:
    exporter = make_exporter(port=sink.port)
    handoffs(7)
    exporter.stop(2.0)
    assert f"{HANDOFF}:7|c" in sink.lines()
    assert any(line.startswith("yolo.handoff.duration") for line in sink.lines())


def test_stop_with_the_server_down_is_bounded_and_counts_the_lost_lines(
        aggregator: Aggregator, make_exporter) -> None:
    exporter = make_exporter()
    exporter._transport = FakeTransport(fail_on=set(range(100)))
    handoffs(3)
    started = time.monotonic()
    exporter.stop(1.0)
    assert time.monotonic() - started < 1.0
    assert aggregator.value(cat.DROPPED, ("statsd", "send_failed")) > 0


def test_high_event_rate_packs_at_least_ten_lines_per_datagram(
        aggregator: Aggregator, make_exporter) -> None:
    exporter = make_exporter()
    fake = exporter._transport = FakeTransport()
    for batch in range(5):
        ReferenceOrchestrator(seed=batch).run(workflows=200)
        assert exporter.flush()
    lines, datagrams = len(fake.lines()), len(fake.payloads)
    assert max(len(p) for p in fake.payloads) <= 1432
    assert lines / datagrams >= 10, (lines, datagrams)
    assert exporter.health()["lines_sent"] == lines


def test_a_non_finite_gauge_is_dropped_and_counted(aggregator: Aggregator, make_exporter,
                                                   sink) -> None:
    exporter = make_exporter(port=sink.port)
    aggregator.set(cat.STATE_FILE_SIZE, (), float("nan"))
    assert exporter.flush()
    assert not [line for line in sink.lines() if line.startswith("yolo.state.file.size")]
    assert aggregator.value(cat.DROPPED, ("statsd", "invalid_value")) == 1


def test_a_negative_gauge_is_reset_then_set_in_one_datagram(
        aggregator: Aggregator, make_exporter, sink) -> None:
    exporter = make_exporter(port=sink.port)
    aggregator.set(cat.STATE_FILE_SIZE, (), -5.0)
    exporter.flush()
    sink.lines()
    assert any(b"yolo.state.file.size:0|g\nyolo.state.file.size:-5|g" in p
               for p in sink.payloads)


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


def test_tcp_delivers_reconnects_after_the_server_drops_and_backs_off(make_exporter) -> None:
    server = TcpSink()
    exporter = make_exporter(protocol="tcp", port=server.port)
    try:
        handoffs(2)
        assert exporter.flush()
        assert server.wait_for(f"{HANDOFF}:2|c")
        server.drop_connections()  # the exporter notices the EOF and reconnects
        handoffs(3)
        assert exporter.flush()
        assert server.wait_for(f"{HANDOFF}:3|c")
        assert len(server.connections) == 2
    finally:
        server.close()
    handoffs(1)
    assert not exporter.flush()  # refused: failing, backoff starts
    failures = exporter.health()["failures"]
    assert not exporter.flush()  # inside the backoff: no new attempt
    assert exporter.health()["failures"] == failures
    revived = TcpSink(server.port)
    try:
        exporter.stop(2.0)  # the final flush tries regardless of the backoff
        assert revived.wait_for(f"{HANDOFF}:1|c")
    finally:
        revived.close()


def test_enabling_statsd_in_yaml_needs_no_code_change(tmp_path, sink) -> None:
    path = tmp_path / "telemetry.yaml"
    path.write_text("server: {enabled: false}\n"
                    f"exporters:\n  statsd: {{enabled: true, port: {sink.port}}}\n")
    from telemetry import Telemetry

    tel = Telemetry(load_config(path, environ={})).start()
    handoffs(2)
    tel.stop()
    assert f"{HANDOFF}:2|c" in sink.lines()


def test_udp_datagrams_are_paced_to_the_configured_rate(make_exporter) -> None:
    exporter = make_exporter(max_packet_bytes=64, max_datagrams_per_s=1000)
    fake = exporter._transport = FakeTransport()
    stamps: list[float] = []
    record = fake.send
    fake.send = lambda payload, deadline=None: (stamps.append(time.monotonic()),  # type: ignore[method-assign]
                                                record(payload, deadline))
    ReferenceOrchestrator(seed=1).run(workflows=3)
    assert exporter.flush()
    assert len(stamps) > 64
    bursts = (len(stamps) - 1) // 16 * 16  # the last pause comes before datagram `bursts`
    assert stamps[-1] - stamps[0] >= bursts / 1000 * 0.95

    unpaced = make_exporter(max_packet_bytes=64, max_datagrams_per_s=0)
    fast = unpaced._transport = FakeTransport()
    ReferenceOrchestrator(seed=1).run(workflows=3)
    started = time.monotonic()
    assert unpaced.flush()
    assert len(fast.payloads) > 64 and time.monotonic() - started < bursts / 1000
