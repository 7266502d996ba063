"""The StatsD exporter against the real Etsy StatsD daemon (tests/backends/).

The daemon's flush interval is a day, so its admin tables hold everything the
exporter sent during a test; timer counts (sample rates applied) are only known
from its final flush, which it does on SIGTERM (``stop()``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporters.statsd.format import line_head
from telemetry import Telemetry
from telemetry import catalogue as cat
from telemetry.catalogue import Kind
from telemetry.cli.simulator import ReferenceOrchestrator
from telemetry.model import HistogramValue
from tests.conftest import send
from tests.support.backends import StatsdDaemon, free_port, require_backend, statsd_daemon
from tests.support.backends.statsd import _statsd_dir

pytestmark = pytest.mark.backend

#: Re-sampled on every collection, so not comparable after the fact (the time in the
#: current mode runs on).
RESAMPLED = (cat.PROCESS_MEMORY, cat.PROCESS_CPU, cat.MODE_TIME)


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
            elif family.spec.kind is Kind.COUNTER and family.spec not in RESAMPLED:
                counters[name] = sample.value
            elif family.spec not in RESAMPLED:
                gauges[name] = sample.value
    return counters, gauges, timers


def test_etsy_daemon_counts_equal_the_aggregator_under_timer_sampling(
        tmp_path: Path, start_telemetry) -> None:
    with statsd_daemon(tmp_path) as daemon:
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
        assert daemon.stats()["bad_lines_seen"] == 0
        daemon_gauges = daemon.gauges()
        assert etsy_name(cat.MODE_CHANGED, ()) in gauges  # timestamps are stable too
        for name, value in gauges.items():
            assert daemon_gauges.get(name) == value, name
        held = {name: len(values) for name, values in daemon.timers().items()}
        daemon.stop()  # the daemon's final flush carries its timer counts
        counts = daemon.timer_counts()
    assert any(held[name] < count for name, count in timers.items()), "nothing was sampled"
    for name, count in timers.items():
        assert held[name] <= count
        assert counts[name] == pytest.approx(count, rel=1e-9), name


def test_high_event_rate_packs_at_least_ten_lines_per_datagram(
        tmp_path: Path, start_telemetry) -> None:
    with statsd_daemon(tmp_path) as daemon:
        # one value per line, so the daemon's line count is a value count. With LLM and
        # tool calls (four timer values a call) a flush is some 330 datagrams: at the
        # default 10,000/s the daemon on a loaded 2-core machine lost about 15% of them.
        tel = start_telemetry(statsd_section(daemon.port, merge_timer_values=False,
                                             max_datagrams_per_s=5000))
        exporter = tel.exporters["statsd"]
        for seed in range(5):
            ReferenceOrchestrator(seed=seed).run(workflows=60)
            assert exporter.flush()
        stats = daemon.stats()
    packets, lines = stats["packets_received"], stats["metrics_received"]
    assert packets == exporter.health()["datagrams_sent"]  # paced: none lost
    assert lines / packets >= 10, (lines, packets)
    assert stats["bad_lines_seen"] == 0


def test_dogstatsd_tags_are_understood_by_the_daemon(tmp_path: Path, start_telemetry) -> None:
    with statsd_daemon(tmp_path) as daemon:  # it files |#tags as "name;tag=value" keys
        tel = start_telemetry(statsd_section(daemon.port, flavor="dogstatsd"))
        ReferenceOrchestrator(seed=5).run(workflows=5)
        tel.stop()
        counters = daemon.counters()
        assert daemon.stats()["bad_lines_seen"] == 0
    assert counters["yolo.handoffs;from_agent=sm;to_agent=dev"] == (
        tel.aggregator.value(cat.HANDOFFS, ("sm", "dev")))


def _health(tel: Telemetry) -> dict:
    with urllib.request.urlopen(f"{tel.url}/health", timeout=5) as response:
        return json.load(response)


def test_daemon_down_then_up_errors_counted_health_recovers_deltas_delivered(
        tmp_path: Path, start_telemetry) -> None:
    with statsd_daemon(tmp_path) as daemon:
        daemon.stop()  # down from the start: the kernel refuses its port
        tel = start_telemetry(statsd_section(daemon.port))
        exporter = tel.exporters["statsd"]
        ReferenceOrchestrator(seed=7).run(workflows=5)
        assert not exporter.flush()
        ReferenceOrchestrator(seed=8).run(workflows=5)
        assert not exporter.flush()
        check = _health(tel)["checks"]["exporter:statsd"]
        assert check["status"] == "failing" and "ConnectionRefused" in check["last_error"]
        assert check["consecutive_failures"] == 2
        assert tel.aggregator.value(cat.EXPORTER_ERRORS, ("statsd",)) == 2

        daemon.start()  # same port, empty tables
        ReferenceOrchestrator(seed=9).run(workflows=5)
        assert exporter.flush()
        assert _health(tel)["checks"]["exporter:statsd"]["status"] == "ok"
        counters, _, _ = expected(tel)
        on_daemon = daemon.counters()
    for name in (etsy_name(cat.HANDOFFS, ("sm", "dev")), etsy_name(cat.DECISIONS, ("qa",
                                                                                   "approve"))):
        assert on_daemon[name] == counters[name]
    assert on_daemon[etsy_name(cat.WORKFLOWS_STARTED, ())] == 15


class TcpStatsdDaemon(StatsdDaemon):
    """The shared daemon, also taking metrics over TCP on ``tcp_port``.

    ``tests/backends`` configures the daemon for UDP only (and checks that it holds its
    UDP port), so this adds the daemon's TCP server next to the UDP one.
    """

    def __init__(self, *args: Any, tcp_port: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tcp_port = tcp_port

    def _write_config(self) -> None:
        self.extra_config["servers"] = [
            {"server": "./servers/udp", "address": "127.0.0.1", "port": self.port},
            {"server": "./servers/tcp", "address": "127.0.0.1", "port": self.tcp_port},
        ]
        super()._write_config()


@contextlib.contextmanager
def tcp_statsd_daemon(tmp_path: Path) -> Iterator[TcpStatsdDaemon]:
    statsd_dir, why = _statsd_dir()
    node = shutil.which("node") or shutil.which("nodejs")
    require_backend("statsd", statsd_dir is not None and node is not None, why or "no node")
    assert statsd_dir is not None and node is not None
    daemon = TcpStatsdDaemon(node, statsd_dir, tmp_path, percent_threshold=(90,),
                             extra_config=None, tcp_port=free_port("tcp"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_tcp_to_the_daemon_delivers_and_reconnects(tmp_path: Path, start_telemetry) -> None:
    with tcp_statsd_daemon(tmp_path) as daemon:
        tel = start_telemetry(statsd_section(daemon.tcp_port, protocol="tcp"))
        exporter = tel.exporters["statsd"]
        ReferenceOrchestrator(seed=11).run(workflows=5)
        assert exporter.flush()
        started = etsy_name(cat.WORKFLOWS_STARTED, ())
        daemon.wait_for(lambda d: d.counters().get(started) == 5)
        daemon.stop()
        ReferenceOrchestrator(seed=12).run(workflows=5)
        assert not exporter.flush()
        assert exporter.health()["status"] == "failing"
        daemon.start()  # same ports, empty tables
        tel.stop()  # the final flush reconnects regardless of the backoff
        assert daemon.wait_for(lambda d: d.counters().get(started)) == 5  # the undelivered five


def test_agent_operations_reach_the_etsy_daemon(tmp_path: Path, start_telemetry) -> None:
    with statsd_daemon(tmp_path) as daemon:
        tel = start_telemetry(statsd_section(daemon.port))
        send("agent_activated", agent="dev")
        for _ in range(3):
            send("llm_called", agent="dev", model="sonnet", duration_s=1.25, input_tokens=1200,
                 output_tokens=300, cost_usd=0.0125)
            send("tool_completed", agent="dev", tool="grep", duration_s=0.5, call_key="same")
        sent_at = time.time()
        assert tel.exporters["statsd"].flush()
        counters, gauges, timers = daemon.counters(), daemon.gauges(), daemon.timers()
        assert daemon.stats()["bad_lines_seen"] == 0
        tel.stop()
    assert counters[etsy_name(cat.LLM_CALLS, ("dev", "sonnet"))] == 3
    assert counters[etsy_name(cat.LLM_COST, ("dev", "sonnet"))] == pytest.approx(0.0375)
    assert counters[etsy_name(cat.TOOL_CALLS, ("dev", "grep"))] == 3
    assert counters[etsy_name(cat.TOOL_CALL_REPEATS, ("dev", "grep"))] == 1
    last_event = gauges[etsy_name(cat.AGENT_LAST_EVENT, ("dev",))]
    assert sent_at - 5 < last_event <= sent_at
    # durations go out in milliseconds, token counts as they are
    assert timers[etsy_name(cat.LLM_CALL_DURATION, ("dev", "sonnet"))] == [1250.0] * 3
    assert timers[etsy_name(cat.LLM_TOKEN_USAGE, ("dev", "sonnet", "input"))] == [1200.0] * 3
