"""The StatsD daemon stopped mid-run and started again, with signals flowing.

tests/test_statsd_daemon.py covers a daemon that is down from the start and a TCP
reconnect, with flushes called by hand. This runs the exporter on its own short timer
against a daemon that goes away in the middle of a run: the sender keeps its pace,
timer lines waiting for the server stay within ``max_pending_lines`` (the excess
counted as ``backlog_full``), /health turns ``degraded`` and back, and once the
daemon is back the counter deltas kept during the outage arrive, so the two lives of
the daemon together hold exactly the aggregator's totals.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from telemetry import catalogue as cat
from telemetry.catalogue import Kind
from tests.conftest import send
from tests.integration.test_statsd_daemon import (
    etsy_name,
    expected,
    statsd_section,
    tcp_statsd_daemon,
)
from tests.support.backends import StatsdDaemon, statsd_daemon, wait_until
from tests.support.faults import (
    EXPORTERS_DECIDE_HEALTH,
    Sampler,
    TimedOrchestrator,
    get_json,
    record,
    rss_mb,
)

pytestmark = pytest.mark.backend

OUTAGE_EVENTS = 60_000
#: ... and for at least this long, so the exporter fails many times over.
OUTAGE_MIN_S = 2.0
MAX_PENDING = 300
RESERVOIR = 16


def statsd_config(daemon: StatsdDaemon) -> dict:
    return {"exporters": {"statsd": {
        "enabled": True, "port": daemon.port, "flush_interval_s": 0.1, "timeout_s": 0.5,
        "reservoir_size": RESERVOIR, "max_pending_lines": MAX_PENDING}},
        "health": EXPORTERS_DECIDE_HEALTH}


def statsd_check(tel) -> tuple[str, dict]:
    status, document = get_json(f"{tel.url}/health")
    assert status == 200, document
    return document["status"], document["checks"]["exporter:statsd"]


def settled_backlog(exporter) -> int:
    """Timer lines carried between flushes (read under the flush lock)."""
    with exporter._lock:
        return len(exporter._pending_timers)


def histogram_series(tel) -> int:
    return sum(len(f.samples) for f in tel.aggregator.collect() if f.spec.kind is Kind.HISTOGRAM)


def stop_between_flushes(daemon: StatsdDaemon, exporter) -> dict[str, float]:
    """Stop the daemon when everything sent so far has been read; return what it held.

    UDP has no acknowledgement: a datagram still in the socket buffer of a daemon that
    is exiting is lost without any error to notice. Holding the exporter's flush lock
    while the daemon drains and stops keeps that inherent UDP loss out of the count;
    the orchestrator's signals keep flowing meanwhile.
    """
    with exporter._lock:
        daemon.wait_for(lambda d: d.stats()["metrics_received"] >= exporter.lines_sent)
        daemon.stop()  # SIGTERM: the daemon's final flush records its counters
    return dict(daemon.flushes()[-1]["counters"])


def test_daemon_stopped_and_started_mid_run(tmp_path: Path, start_telemetry) -> None:
    with statsd_daemon(tmp_path) as daemon:
        tel = start_telemetry(statsd_config(daemon))
        exporter = tel.exporters["statsd"]
        orchestrator = TimedOrchestrator(seed=31, events_per_s=2000)
        with orchestrator.running():
            orchestrator.phase = "up"
            daemon.wait_for_metrics_received(50)
            wait_until(lambda: statsd_check(tel)[0] == "healthy", what="healthy")

            first_life = stop_between_flushes(daemon, exporter)
            orchestrator.phase = "down"
            stopped_at = orchestrator.stats.events
            errors_before = tel.aggregator.value(cat.EXPORTER_ERRORS, ("statsd",))
            orchestrator.events_per_s = None
            with Sampler(pending=lambda: exporter.health()["pending_timer_lines"],
                         settled=lambda: settled_backlog(exporter), rss=rss_mb) as sampler:
                _, check = wait_until(
                    lambda: (s := statsd_check(tel))[0] == "degraded"
                    and s[1]["status"] == "failing" and s, what="/health degraded")
                rss_start = rss_mb()
                long_enough = time.monotonic() + OUTAGE_MIN_S
                wait_until(lambda: orchestrator.stats.events - stopped_at >= OUTAGE_EVENTS
                           and time.monotonic() >= long_enough,
                           timeout=60, what="the outage's events (did sends block?)")
                rss_end = rss_mb()
            outage_events = orchestrator.stats.events - stopped_at
            errors_during = tel.aggregator.value(cat.EXPORTER_ERRORS, ("statsd",)) - errors_before
            backlog_dropped = tel.aggregator.value(cat.DROPPED, ("statsd", "backlog_full"))

            orchestrator.events_per_s = 2000
            orchestrator.phase = "recovering"
            daemon.start()  # same port, empty tables
            wait_until(lambda: statsd_check(tel)[1]["status"] == "ok"
                       and statsd_check(tel)[0] == "healthy", what="/health healthy again")
            orchestrator.phase = "after"
        tel.stop()  # the final flush sends what is left

        counters, _, _ = expected(tel)

        def both_lives_hold_the_totals(d: StatsdDaemon) -> bool:
            second = d.counters()
            return all(first_life.get(name, 0) + second.get(name, 0) == value
                       for name, value in counters.items())

        daemon.wait_for(both_lives_hold_the_totals)
        assert daemon.stats()["bad_lines_seen"] == 0

    for phase in ("up", "down", "recovering"):
        orchestrator.latency(phase).assert_bounded(phase)
    assert orchestrator.latency("down").raw_max_s < 0.5
    assert "ConnectionRefused" in check["last_error"]
    assert errors_during >= 2
    # between flushes the backlog is at most max_pending_lines; during one it also
    # holds that interval's new lines, at most reservoir_size per histogram series
    assert sampler.maxima["settled"] <= MAX_PENDING
    assert sampler.maxima["pending"] <= MAX_PENDING + RESERVOIR * histogram_series(tel)
    assert backlog_dropped > 0  # the outage outgrew the backlog: the excess was counted
    assert rss_end - rss_start < 40, (rss_start, rss_end)
    handoffs = sum(v for k, v in counters.items() if k.startswith("yolo.handoffs."))
    record("statsd daemon stopped and started",
           events=orchestrator.stats.events, outage_events=outage_events,
           handoffs_sent=orchestrator.stats.handoffs, handoffs_on_daemon=handoffs,
           counters_compared=len(counters),
           exporter_errors_during_outage=int(errors_during),
           timer_lines_dropped_backlog_full=int(backlog_dropped),
           max_pending_timer_lines_between_flushes=int(sampler.maxima["settled"]),
           max_pending_timer_lines_during_a_flush=int(sampler.maxima["pending"]),
           pending_limit=MAX_PENDING,
           rss_mb_outage_start=round(rss_start, 1), rss_mb_outage_end=round(rss_end, 1),
           send_latency={p: orchestrator.latency(p).as_dict()
                         for p in ("up", "down", "recovering")})


def test_tcp_to_a_stopped_daemon_stays_failing_until_it_reads_again(
        tmp_path: Path, start_telemetry) -> None:
    """SIGSTOP: the daemon's kernel still accepts connections and acknowledges bytes
    until its buffers fill, so neither a send nor a reconnect proves delivery. Before,
    a send that timed out closed the connection, the next flush connected again
    (accepted: the listen backlog) and /health said "ok" while nothing was read."""
    with tcp_statsd_daemon(tmp_path) as daemon:
        tel = start_telemetry(statsd_section(daemon.tcp_port, protocol="tcp", timeout_s=0.3,
                                             max_backoff_s=0.2, reservoir_size=100_000))
        exporter = tel.exporters["statsd"]
        send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.1)
        assert exporter.flush()
        assert exporter.health()["status"] == "ok"
        # A small send buffer on our side, so that a few flushes fill both ends.
        exporter._transport._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        pid = daemon._process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            def flush_a_burst() -> bool:
                for number in range(5000):  # ~50 KB of timer values per flush
                    send("handoff_completed", from_agent="pm", to_agent="dev",
                         duration_s=0.001 * (number % 100))
                return exporter.flush()

            wait_until(lambda: not flush_a_burst(), timeout=30,
                       what="a flush to fail once the daemon's buffers are full")
            # It stays failing, flush after flush, past any reconnect backoff.
            failing_since = time.monotonic()
            flushes = 0
            while time.monotonic() - failing_since < 1.5:
                assert not flush_a_burst()
                flushes += 1
                assert exporter.health()["status"] == "failing", exporter.health()
            assert "not read" in exporter.health()["last_error"] or \
                "not acknowledged" in exporter.health()["last_error"], exporter.health()
        finally:
            os.kill(pid, signal.SIGCONT)
        # It reads again: the exporter notices and delivers what it kept.
        wait_until(lambda: exporter.flush(), timeout=30, what="a flush to succeed again")
        assert exporter.health()["status"] == "ok"
        counters, _, _ = expected(tel)
        handoffs = etsy_name(cat.HANDOFFS, ("pm", "dev"))
        # every delta kept while it was stopped arrives, once
        daemon.wait_for(lambda d: d.counters().get(handoffs) == counters[handoffs])
        assert daemon.stats()["bad_lines_seen"] == 0
    record("statsd tcp daemon stopped (SIGSTOP)", failing_flushes_checked=flushes,
           handoffs=counters[handoffs])
