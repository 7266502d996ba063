"""One million events from eight threads and an asyncio loop, with every exporter busy.

While the senders run, a real Prometheus scrapes every 200 ms, the OTLP exporter
pushes to rotel every 200 ms and the StatsD exporter flushes to the daemon every
100 ms, and a checker thread takes snapshots as fast as it can. Afterwards every
count is exact: in the aggregator, in Prometheus, and (after ``stop()``) in rotel's
last points and the StatsD daemon's counters. Every wait has a deadline, so a
deadlock fails the test instead of hanging it. Tracing is off here: a span per event
for a million events measures the span pipeline, which the fault tests cover.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import blinker
import pytest

from telemetry import catalogue as cat
from tests.faults.test_otlp import latest_points
from tests.integration.test_statsd_daemon import etsy_name
from tests.support.backends import prometheus_server, rotel_receiver, statsd_daemon
from tests.support.faults import record

pytestmark = pytest.mark.backend

THREADS = 8
PER_THREAD = 112_500  # events per thread
TASKS, PER_TASK = 10, 10_000  # the asyncio loop's share
TOTAL = THREADS * PER_THREAD + TASKS * PER_TASK
CYCLE = 4  # signals per round: handoff, decision, error, safety block
AGENTS = ("pm", "dev", "qa")
DEADLINE_S = 120.0

handoff = blinker.signal("yolo.handoff_completed")
decision = blinker.signal("yolo.decision_made")
error = blinker.signal("yolo.error_occurred")
block = blinker.signal("yolo.safety_blocked")


def one_round(agent: str) -> None:
    handoff.send(None, from_agent=agent, to_agent="sm", duration_s=0.25)
    decision.send(None, agent=agent, decision_type="choose", duration_s=0.5)
    error.send(None, agent=agent, error_type="ToolTimeout")
    block.send(None, agent=agent, rule="budget_guard")


def thread_sender(index: int, barrier: threading.Barrier) -> None:
    agent = AGENTS[index % len(AGENTS)]
    barrier.wait(DEADLINE_S)
    for _ in range(PER_THREAD // CYCLE):
        one_round(agent)


async def task_sender(index: int) -> None:
    agent = AGENTS[index % len(AGENTS)]
    for number in range(PER_TASK // CYCLE):
        one_round(agent)
        if number % 50 == 0:
            await asyncio.sleep(0)  # let the other tasks interleave


async def asyncio_senders() -> None:
    await asyncio.gather(*(task_sender(index) for index in range(TASKS)))


def expected_by_agent() -> dict[str, int]:
    """Rounds each agent sent."""
    rounds = dict.fromkeys(AGENTS, 0)
    for index in range(THREADS):
        rounds[AGENTS[index % len(AGENTS)]] += PER_THREAD // CYCLE
    for index in range(TASKS):
        rounds[AGENTS[index % len(AGENTS)]] += PER_TASK // CYCLE
    return rounds


class SnapshotChecker(threading.Thread):
    """Takes snapshots continuously; every one must be internally consistent."""

    def __init__(self, tel) -> None:
        super().__init__(name="snapshot-checker", daemon=True)
        self.tel = tel
        self.stopping = threading.Event()
        self.snapshots = 0
        #: Snapshots taken while events were still arriving: some, not all, recorded.
        self.during_load = 0
        self.problems: list[str] = []

    def run(self) -> None:
        previous = 0
        while not self.stopping.is_set():
            agent, system = self.tel.snapshot()
            self.snapshots += 1
            # the counter and the histogram of a handoff are updated under one lock
            if agent.handoffs_total != agent.handoff_duration.count:
                self.problems.append(f"handoffs {agent.handoffs_total} != "
                                     f"{agent.handoff_duration.count}")
            if agent.decisions_made != agent.decision_duration.count:
                self.problems.append("decisions and their histogram disagree")
            events = system.events_total
            if 0 < events < TOTAL:
                self.during_load += 1
            if events < previous:
                self.problems.append(f"events went back from {previous} to {events}")
            previous = events
            # a pause, or the checker holds the lock a third of the time and starves senders
            self.stopping.wait(0.002)


def test_a_million_events_from_threads_and_asyncio_with_every_exporter_busy(
        tmp_path: Path, start_telemetry) -> None:
    assert TOTAL == 1_000_000
    with rotel_receiver(tmp_path) as rotel, statsd_daemon(tmp_path) as daemon:
        tel = start_telemetry({
            "exporters": {
                "otlp": {"enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 0.2,
                         "traces": False},
                "statsd": {"enabled": True, "port": daemon.port, "flush_interval_s": 0.1},
            },
            "tracing": {"enabled": False},
        })
        with prometheus_server(tmp_path, [f"127.0.0.1:{tel.server.port}"],
                               scrape_interval="200ms") as prometheus:
            prometheus.wait_for_targets_up(1)
            checker = SnapshotChecker(tel)
            barrier = threading.Barrier(THREADS + 1)
            threads = [threading.Thread(target=thread_sender, args=(i, barrier), daemon=True)
                       for i in range(THREADS)]
            for thread in [checker, *threads]:
                thread.start()
            started = time.monotonic()
            barrier.wait(DEADLINE_S)
            asyncio.run(asyncio.wait_for(asyncio_senders(), DEADLINE_S))
            for thread in threads:
                thread.join(max(DEADLINE_S - (time.monotonic() - started), 1))
            assert not any(thread.is_alive() for thread in threads), "a sender is stuck"
            elapsed = time.monotonic() - started
            checker.stopping.set()
            checker.join(10)
            assert not checker.problems, checker.problems[:5]
            # The load lasts about a second on a fast build, and the checker shares the
            # GIL with eight sending threads: what a 2-core host can promise is a few
            # snapshots in the middle of it, each checking every invariant above.
            assert checker.during_load >= 3, (checker.during_load, checker.snapshots)

            agent, system = tel.snapshot()
            rounds = sum(expected_by_agent().values())
            assert system.events_total == TOTAL
            assert system.invalid_events_total == 0
            assert agent.handoffs_total == agent.handoff_duration.count == rounds
            assert agent.decisions_made == agent.errors_total == agent.safety_blocks == rounds
            for name, count in expected_by_agent().items():
                assert agent.handoffs_by_pair[(name, "sm")] == count
            prometheus.wait_for(f"sum(yolo_handoffs_total) == {rounds}", timeout=30)
            assert prometheus.query_value("sum(yolo_telemetry_events_total)") == TOTAL
            assert prometheus.query_value("sum(yolo_handoff_duration_seconds_count)") == rounds
        stopped = time.monotonic()
        tel.stop()
        stop_s = time.monotonic() - stopped

        latest = latest_points(rotel, tel.instance_id)
        for name, count in expected_by_agent().items():
            pair = (("from_agent", name), ("to_agent", "sm"))
            assert latest[("yolo.handoffs", pair)]["value"] == count
            assert latest[("yolo.handoff.duration", pair)]["count"] == count
            assert latest[("yolo.errors", (("agent", name), ("error_type", "ToolTimeout")))][
                "value"] == count
        events = sum(p["value"] for (metric, _), p in latest.items()
                     if metric == "yolo.telemetry.events")
        assert events == TOTAL

        def statsd_has_everything(d) -> bool:
            counters = d.counters()
            return all(counters.get(etsy_name(cat.HANDOFFS, (name, "sm"))) == count and
                       counters.get(etsy_name(cat.SAFETY_BLOCKS, (name, "budget_guard"))) == count
                       for name, count in expected_by_agent().items())

        daemon.wait_for(statsd_has_everything)
        events_prefix = etsy_name(cat.EVENTS, ("x",))[:-1]  # one series per signal
        statsd_events = sum(v for k, v in daemon.counters().items()
                            if k.startswith(events_prefix))
        assert statsd_events == TOTAL
        stats = daemon.stats()
        assert stats["bad_lines_seen"] == 0
    exporters = {name: e.health() for name, e in tel.exporters.items()}
    record("one million events", events=TOTAL, threads=THREADS, asyncio_tasks=TASKS,
           seconds=round(elapsed, 2), events_per_s=round(TOTAL / elapsed),
           snapshots_checked=checker.snapshots, snapshots_during_load=checker.during_load,
           stop_s=round(stop_s, 3),
           otlp_exports=exporters["otlp"]["metrics"]["exports"],
           otlp_failures=exporters["otlp"]["failures"],
           statsd_flushes=exporters["statsd"]["exports"],
           statsd_failures=exporters["statsd"]["failures"],
           statsd_last_error=exporters["statsd"]["last_error"],
           statsd_datagrams=stats["packets_received"], statsd_events_counter=statsd_events)
