"""The StatsD exporter against the real Etsy StatsD daemon (see tests/etsy_statsd.py)."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters.statsd_format import line_head
from telemetry import Telemetry
from telemetry import catalogue as cat
from telemetry.aggregator import HistogramValue
from telemetry.catalogue import Kind
from telemetry.simulator import ReferenceOrchestrator

from .etsy_statsd import EtsyStatsd, free_port

pytestmark = pytest.mark.backend

#: Re-sampled on every collection, so not comparable after the fact.
RESAMPLED = (cat.PROCESS_MEMORY, cat.PROCESS_CPU)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator:
    started: list[EtsyStatsd] = []

    def start(**options: object) -> EtsyStatsd:
        directory = tmp_path / f"statsd{len(started)}"
        directory.mkdir()
        daemon = EtsyStatsd(directory, **options)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def statsd_section(port: int, **settings: object) -> dict:
    return {"exporters": {"statsd": {"enabled": True, "port": port, "flush_interval_s": 3600,
                                     **settings}}}


def etsy_name(spec: cat.MetricSpec, labels: tuple[str, ...]) -> str:
    return line_head("etsy", spec.statsd_name("yolo"), spec.labels, labels).before


def expected(tel: Telemetry) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """Counters, gauges and histogram counts of the aggregator, by etsy name."""
    counters: dict[str, float] = {}
    gauges: dict[str, float] = {}
    timers: dict[str, int] = {}
    for family in tel.aggregator.collect():
        for sample in family.samples:
            name = etsy_name(family.spec, sample.labels)
            if isinstance(sample.value, HistogramValue):
                timers[name] = sample.value.count
            elif family.spec.kind is Kind.COUNTER:
                counters[name] = sample.value
            elif family.spec not in RESAMPLED:
                gauges[name] = sample.value
    return counters, gauges, timers


def test_etsy_daemon_counts_equal_the_aggregator_under_timer_sampling(
        daemons, start_telemetry) -> None:
    daemon = daemons()
    tel = start_telemetry(statsd_section(daemon.port, reservoir_size=4))
    exporter = tel.exporters["statsd"]
    for seed in range(4):
        ReferenceOrchestrator(seed=seed).run(workflows=15)
        assert exporter.flush()
    ReferenceOrchestrator(seed=99).run(workflows=5)  # only stop() will send these
    before_stop = daemon.counters()
    tel.stop()

    counters, gauges, timers = expected(tel)
    on_daemon = daemon.counters()
    handoffs = etsy_name(cat.HANDOFFS, ("sm", "dev"))
    assert before_stop.get(handoffs, 0) < counters[handoffs]  # stop() flushed the rest
    for name, value in counters.items():
        assert on_daemon.get(name, 0.0) == pytest.approx(value, rel=1e-9), name
    assert on_daemon["statsd.bad_lines_seen"] == 0
    daemon_gauges = daemon.gauges()
    for name, value in gauges.items():
        assert daemon_gauges.get(name) == value, name

    held = daemon.timers()
    final = daemon.stop()
    assert any(held[name] < count for name, count in timers.items()), "nothing was sampled"
    for name, count in timers.items():
        assert held[name] <= count
        assert final["timer_counters"][name] == pytest.approx(count, rel=1e-9), name


def test_high_event_rate_packs_at_least_ten_lines_per_datagram(daemons, start_telemetry) -> None:
    daemon = daemons()
    tel = start_telemetry(statsd_section(daemon.port))
    exporter = tel.exporters["statsd"]
    for seed in range(5):
        ReferenceOrchestrator(seed=seed).run(workflows=60)
        assert exporter.flush()
    counters = daemon.counters()
    packets, lines = counters["statsd.packets_received"], counters["statsd.metrics_received"]
    assert packets == exporter.health()["datagrams_sent"]  # paced: none lost
    assert lines / packets >= 10, (lines, packets)
    assert counters["statsd.bad_lines_seen"] == 0


def test_dogstatsd_tags_are_understood_by_the_daemon(daemons, start_telemetry) -> None:
    daemon = daemons()  # the Etsy daemon folds |#tags into "name;tag=value" keys
    tel = start_telemetry(statsd_section(daemon.port, flavor="dogstatsd"))
    ReferenceOrchestrator(seed=5).run(workflows=5)
    tel.stop()
    counters = daemon.counters()
    assert counters["yolo.handoffs;from_agent=sm;to_agent=dev"] == (
        tel.aggregator.value(cat.HANDOFFS, ("sm", "dev")))
    assert counters["statsd.bad_lines_seen"] == 0


def _health(tel: Telemetry) -> dict:
    with urllib.request.urlopen(f"{tel.url}/health", timeout=5) as response:
        return json.load(response)


def test_daemon_down_then_up_errors_counted_health_recovers_deltas_delivered(
        daemons, start_telemetry) -> None:
    port = free_port(socket.SOCK_DGRAM)
    tel = start_telemetry(statsd_section(port))
    exporter = tel.exporters["statsd"]
    ReferenceOrchestrator(seed=7).run(workflows=5)
    assert not exporter.flush()
    ReferenceOrchestrator(seed=8).run(workflows=5)
    assert not exporter.flush()
    check = _health(tel)["checks"]["exporter:statsd"]
    assert check["status"] == "failing"
    assert check["consecutive_failures"] == 2
    assert tel.aggregator.value(cat.EXPORTER_ERRORS, ("statsd",)) == 2

    daemon = daemons(port=port)
    ReferenceOrchestrator(seed=9).run(workflows=5)
    assert exporter.flush()
    assert _health(tel)["checks"]["exporter:statsd"]["status"] == "ok"
    counters, _, _ = expected(tel)
    on_daemon = daemon.counters()
    for spec, labels in ((cat.HANDOFFS, ("sm", "dev")), (cat.WORKFLOWS_STARTED, ())):
        name = etsy_name(spec, labels)
        assert on_daemon[name] == counters[name] == tel.aggregator.value(spec, labels)
    assert on_daemon[etsy_name(cat.WORKFLOWS_STARTED, ())] == 15


def test_tcp_to_the_daemon_delivers_and_reconnects(daemons, start_telemetry) -> None:
    daemon = daemons(tcp=True)
    tel = start_telemetry(statsd_section(daemon.port, protocol="tcp"))
    exporter = tel.exporters["statsd"]
    ReferenceOrchestrator(seed=11).run(workflows=5)
    assert exporter.flush()
    port = daemon.port
    daemon.stop()
    ReferenceOrchestrator(seed=12).run(workflows=5)
    assert not exporter.flush()
    assert exporter.health()["status"] == "failing"
    revived = daemons(tcp=True, port=port)
    tel.stop()  # the final flush reconnects regardless of the backoff
    name = etsy_name(cat.WORKFLOWS_STARTED, ())
    assert revived.counters()[name] == 5  # what the first daemon had not received
