"""How the StatsD exporter meets its server: UDP refusals and recovery, TCP
reconnects and backoff, pacing, and a bounded stop when nothing answers."""

from __future__ import annotations

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
        assert transport._sock is not None and transport._sock.gettimeout() == 2.0
        transport.send(b"b:1|c", deadline=200.0)  # unchanged: not set again, still 2 s
        assert transport._sock.gettimeout() == 2.0
        transport.send(b"c:1|c", deadline=100.5)  # the deadline is nearer than 2 s
        assert transport._sock.gettimeout() == 0.5
        transport.send(b"d:1|c")  # no deadline: the timeout alone
        assert transport._sock.gettimeout() == 2.0
        now[0] = 101.0
        with pytest.raises(TimeoutError):
            transport.send(b"e:1|c", deadline=100.5)
        assert sink.lines() == ["a:1|c", "b:1|c", "c:1|c", "d:1|c"]  # loopback: at once
    finally:
        transport.close()
        sink.close()
