"""How the StatsD exporter meets its server: UDP refusals and recovery, TCP
reconnects and backoff, pacing, and a bounded stop when nothing answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.cli.simulator import ReferenceOrchestrator
from tests.support.statsd_fakes import (
    HANDOFF,
    FakeTransport,
    TcpSink,
    UdpSink,
    exporter_factory,
    handoffs,
)


@pytest.fixture
def make_exporter(aggregator: Aggregator) -> Iterator:
    yield from exporter_factory(aggregator)


def test_server_down_then_up_counts_errors_and_delivers_the_deltas(start_telemetry) -> None:
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




def test_stop_with_the_server_down_is_bounded_and_counts_the_lost_lines(
        aggregator: Aggregator, make_exporter) -> None:
    exporter = make_exporter()
    exporter._transport = FakeTransport(fail_on=set(range(100)))
    handoffs(3)
    started = time.monotonic()
    exporter.stop(1.0)
    assert time.monotonic() - started < 1.0
    assert aggregator.value(cat.DROPPED, ("statsd", "send_failed")) > 0


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


def test_each_udp_send_is_bounded_by_the_timeout_and_the_flush_deadline() -> None:
    from exporters.statsd.transport import UdpTransport

    sink = UdpSink()
    now = [100.0]
    transport = UdpTransport("127.0.0.1", sink.port, 2.0, clock=lambda: now[0])
    try:
        transport.send(b"a:1|c", deadline=200.0)
        # A datagram is one system call: no timeout to ask the kernel about first.
        assert transport._sock is not None and transport._sock.gettimeout() == 0.0
        transport.send(b"b:1|c")  # no deadline: the timeout alone
        now[0] = 101.0
        with pytest.raises(TimeoutError):
            transport.send(b"c:1|c", deadline=100.5)
        assert sink.lines() == ["a:1|c", "b:1|c"]  # loopback: at once
    finally:
        transport.close()
        sink.close()


@pytest.mark.parametrize(("timeout_s", "deadline_in_s"), [(0.2, None), (5.0, 0.2)])
def test_a_udp_send_waits_for_room_at_most_the_timeout_or_the_deadline(
        timeout_s: float, deadline_in_s: float | None) -> None:
    """A full send buffer (here a datagram socket pair whose reader does not read):
    the send waits for room, bounded, then fails; once there is room it goes out."""
    from exporters.statsd.transport import UdpTransport

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    transport = UdpTransport("127.0.0.1", 9, timeout_s)
    try:
        ours.setblocking(False)
        transport._sock = ours
        with pytest.raises(BlockingIOError):
            for _ in range(100_000):
                ours.send(b"x:1|c")
        deadline = None if deadline_in_s is None else time.monotonic() + deadline_in_s
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            transport.send(b"y:1|c", deadline)
        waited = time.monotonic() - started
        assert 0.15 <= waited < 2.0
        assert transport._sock is None  # closed: the next send starts afresh
        assert theirs.recv(64) == b"x:1|c"  # the reader was never handed "y"
    finally:
        transport.close()
        theirs.close()


def test_a_udp_burst_goes_out_in_order_and_stops_at_the_first_refused_datagram() -> None:
    """Compiled, a burst is sent with one release of the GIL; in either build the
    datagrams arrive in order, and a refused one (nobody listens: loopback reports it
    at once) is neither counted as sent nor followed by the rest."""
    from exporters.statsd.transport import UdpTransport

    sink = UdpSink()
    transport = UdpTransport("127.0.0.1", sink.port, 2.0)
    try:
        payloads = [f"burst:{n}|c".encode() for n in range(40)]
        assert transport.send_burst(payloads[:20], deadline=time.monotonic() + 5) == (20, None)
        assert transport.send_burst(payloads[20:]) == (20, None)
        assert sink.lines() == [payload.decode() for payload in payloads]
    finally:
        transport.close()
        port = sink.port
        sink.close()
    refused = UdpTransport("127.0.0.1", port, 2.0)  # the sink is gone: refused
    try:
        sent, error = refused.send_burst([b"a:1|c", b"b:1|c", b"c:1|c"])
        assert sent <= 1 and isinstance(error, ConnectionRefusedError)
    finally:
        refused.close()


def test_a_udp_burst_into_a_full_buffer_waits_its_bound_then_reports_what_went_out() -> None:
    from exporters.statsd.transport import UdpTransport

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    transport = UdpTransport("127.0.0.1", 9, 0.2)
    try:
        ours.setblocking(False)
        transport._sock = ours
        room = 0
        with pytest.raises(BlockingIOError):
            for room in range(100_000):  # noqa: B007 - the count is used below
                ours.send(b"x:1|c")
        theirs.recv(64)  # room for exactly one more
        started = time.monotonic()
        sent, error = transport.send_burst([b"y:1|c", b"z:1|c"])
        assert (sent, type(error)) == (1, TimeoutError)
        assert 0.15 <= time.monotonic() - started < 2.0
        received = [theirs.recv(64) for _ in range(room)]
        assert received[-1] == b"y:1|c" and b"z:1|c" not in received
    finally:
        transport.close()
        theirs.close()
