"""The StatsD exporter against in-process fakes: deltas, gauges, sampled timers,
packing, failures and recovery, stop. The real daemon is in test_statsd_daemon.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporters.statsd.exporter import StatsdConfig, StatsdExporter
from telemetry import catalogue as cat
from telemetry import load_config
from telemetry.aggregation.aggregator import Aggregator
from telemetry.cli.simulator import ReferenceOrchestrator
from tests.conftest import FakeClock, send
from tests.support.statsd_fakes import (
    HANDOFF,
    FakeTransport,
    UdpSink,
    exporter_factory,
    handoffs,
    server_view,
    udp_sink,
)


@pytest.fixture
def make_exporter(aggregator: Aggregator) -> Iterator:
    yield from exporter_factory(aggregator)


@pytest.fixture
def sink() -> Iterator[UdpSink]:
    yield from udp_sink()


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
    assert timer == ["yolo.handoff.duration.from_agent.pm.to_agent.dev"
                     + ":250|ms|@0.1" * 5]  # one series' values share a line
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


def test_stop_flushes_what_is_pending(make_exporter, sink) -> None:
    exporter = make_exporter(port=sink.port)
    handoffs(7)
    exporter.stop(2.0)
    assert f"{HANDOFF}:7|c" in sink.lines()
    assert any(line.startswith("yolo.handoff.duration") for line in sink.lines())


def test_unmerged_timer_values_are_one_line_each(make_exporter, sink) -> None:
    exporter = make_exporter(port=sink.port, reservoir_size=5, merge_timer_values=False)
    handoffs(50, duration_s=0.25)
    exporter.flush()
    timer = [line for line in sink.lines() if "|ms" in line]
    assert timer == ["yolo.handoff.duration.from_agent.pm.to_agent.dev:250|ms|@0.1"] * 5


def test_merged_timer_lines_respect_the_packet_size_and_keep_every_value(
        aggregator: Aggregator, make_exporter) -> None:
    exporter = make_exporter(max_packet_bytes=200)
    fake = exporter._transport = FakeTransport()
    ReferenceOrchestrator(seed=5).run(workflows=40)
    assert exporter.flush()
    timer_lines = [line for line in fake.lines() if "|ms" in line]
    assert max(len(payload) for payload in fake.payloads) <= 200
    assert any(line.count("|ms") > 1 for line in timer_lines)
    view = server_view(fake.lines())
    durations = aggregator.collect([cat.DECISION_DURATION])[0]
    for sample in durations.samples:
        name = f"yolo.decision.duration.agent.{sample.labels[0]}"
        assert view["ms"][name] == pytest.approx(sample.value.count), name


@pytest.mark.parametrize("merge", [False, True])
def test_high_event_rate_packs_at_least_ten_values_per_datagram(
        aggregator: Aggregator, make_exporter, merge: bool) -> None:
    exporter = make_exporter(merge_timer_values=merge)
    fake = exporter._transport = FakeTransport()
    for batch in range(5):
        ReferenceOrchestrator(seed=batch).run(workflows=200)
        assert exporter.flush()
    lines, datagrams = len(fake.lines()), len(fake.payloads)
    values = sum(line.count("|") - line.count("|@") for line in fake.lines())
    assert max(len(p) for p in fake.payloads) <= 1432
    assert values / datagrams >= 10, (values, datagrams)
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


def test_enabling_statsd_in_yaml_needs_no_code_change(tmp_path, sink) -> None:
    path = tmp_path / "telemetry.yaml"
    path.write_text("server: {enabled: false}\n"
                    f"exporters:\n  statsd: {{enabled: true, port: {sink.port}}}\n")
    from telemetry import Telemetry

    tel = Telemetry(load_config(path, environ={})).start()
    handoffs(2)
    tel.stop()
    assert f"{HANDOFF}:2|c" in sink.lines()
