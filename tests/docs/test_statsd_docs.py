"""docs/statsd.md shows real exporter output and the real configuration keys."""

from __future__ import annotations

import re

import pytest

from exporters.statsd.exporter import StatsdConfig, StatsdExporter
from exporters.statsd.format import timer_rates
from telemetry import load_config
from telemetry.aggregation.aggregator import Aggregator
from tests.conftest import send
from tests.support import ROOT
from tests.support.statsd_fakes import UdpSink

DOC = (ROOT / "docs" / "statsd.md").read_text()


def documented_lines(flavor: str) -> list[str]:
    match = re.search(rf"<!-- statsd-example: {flavor} -->\n```text\n(.*?)```", DOC, re.S)
    assert match, f"no example block for {flavor}"
    return match.group(1).strip().splitlines()


@pytest.mark.parametrize("flavor", ["etsy", "dogstatsd", "telegraf"])
def test_documented_example_lines_are_what_the_exporter_sends(flavor: str) -> None:
    aggregator = Aggregator()
    aggregator.connect()
    sink = UdpSink()
    exporter = StatsdExporter(
        StatsdConfig(enabled=True, port=sink.port, flavor=flavor, reservoir_size=2,
                     flush_interval_s=3600),
        aggregator, load_config({}, environ={}))
    try:
        exporter.start()
        for _ in range(4):
            send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.25)
        send("context_updated", agent="dev", items=12, tokens=5400)
        assert exporter.flush()
        sent = sink.lines()
    finally:
        exporter.stop(1.0)
        aggregator.disconnect()
        sink.close()
    documented = documented_lines(flavor)
    assert len(documented) == (4 if flavor == "dogstatsd" else 3)  # etsy, telegraf merge
    for line in documented:
        assert sent.count(line) == documented.count(line), line


def test_the_worked_sampling_example_is_right() -> None:
    rates = timer_rates(256, 1000)
    assert rates.count("0.25") == 232 and rates.count("0.3333333333333333") == 24
    prose = " ".join(DOC.split())
    assert "232 lines with `@0.25` and 24 with `@0.3333333333333333`" in prose


def test_every_config_key_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(\w+)`[^|]*\| `([^`]*)`", DOC, re.M))
    for key, field in StatsdConfig.model_fields.items():
        if key in ("host", "port"):
            continue
        assert key in rows, key
        default = field.default
        text = str(default).lower() if isinstance(default, bool) else (
            f"{default:g}" if isinstance(default, float) else str(default))
        assert rows[key] == text, key
    assert "`host`, `port` | `127.0.0.1`, `8125`" in DOC


def test_the_example_config_enables_statsd() -> None:
    path = ROOT / "config" / "statsd" / "telemetry-statsd.yaml"
    statsd = load_config(path, environ={}).exporters.statsd
    assert statsd.enabled and statsd.port == 8125 and statsd.flavor == "etsy"
