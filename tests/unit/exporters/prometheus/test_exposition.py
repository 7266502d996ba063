"""The exposition writer: both formats read back, by prometheus_client's parsers, as
exactly the aggregator's samples, hostile label values included; the same samples as
prometheus_client's own encoder wrote; the name[] filter; exemplars."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from prometheus_client.utils import floatToGoString

from exporters.prometheus.exposition import escape_label_value, go_float, label_part, number
from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from tests.conftest import FakeClock, send
from tests.unit.exporters.prometheus.support import (
    OPENMETRICS,
    TEXT,
    assert_same_samples,
    expected_samples,
    exporter_for,
    now,
    parse,
    samples_of,
    send_hostile,
    set_exemplar,
)


@pytest.fixture
def aggregator(clock: FakeClock) -> Iterator[Aggregator]:
    """An aggregator whose wall clock stands still, so the timestamp gauges read the
    same in the exposition and in the collection it is compared with."""
    agg = Aggregator(clock=clock, wall_clock=lambda: 1_800_000_000.0)
    agg.connect()
    yield agg
    agg.disconnect()


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_every_sample_reads_back_as_the_aggregators(aggregator: Aggregator,
                                                    openmetrics: bool) -> None:
    send_hostile()
    send("decision_made", agent="a", decision_type="d", duration_s=0.01)
    send("context_updated", agent="a", items=3, tokens=12_000)
    send("mode_changed", mode="degraded")
    body, content_type = exporter_for(aggregator).render(OPENMETRICS if openmetrics else TEXT)
    assert content_type.startswith("application/openmetrics-text" if openmetrics
                                   else "text/plain; version=0.0.4")
    found = samples_of(parse(body, openmetrics))
    assert_same_samples(found, expected_samples(aggregator, openmetrics))
    assert body.endswith(b"# EOF\n") == openmetrics
    agents = {dict(labels).get("from_agent") for name, labels in found
              if name == "yolo_handoffs_total"}
    assert {'quo"te', "back\\slash", "newline", "é\u202e\U0001F600", "{0}", "日本語"} <= agents


@pytest.mark.parametrize("accept", [TEXT, OPENMETRICS], ids=["text", "openmetrics"])
def test_the_same_samples_as_prometheus_clients_encoder(aggregator: Aggregator,
                                                        accept: str) -> None:
    """The writer replaced prometheus_client's encoder: every sample it wrote is still
    written, with the same value (``le`` compared as a number: prometheus_client's
    own histograms write it as Go does, the collector did not); OpenMetrics adds
    ``_created``."""
    send_hostile()
    exporter = exporter_for(aggregator)
    openmetrics = accept == OPENMETRICS

    def by_number(samples: dict) -> dict:
        return {(name, tuple((k, float(v) if k == "le" else v) for k, v in labels)): value
                for (name, labels), value in samples.items()
                if name not in (cat.PROCESS_MEMORY.prometheus_name,
                                cat.PROCESS_CPU.prometheus_name)}

    ours = by_number(samples_of(parse(exporter.render(accept)[0], openmetrics)))
    theirs = by_number(samples_of(parse(exporter.render_with_prometheus_client(accept)[0],
                                        openmetrics)))
    created = {key for key in ours if key[0].endswith("_created")}
    assert bool(created) == openmetrics
    assert {key: ours[key] for key in ours.keys() - created} == theirs


def test_headers_units_and_the_end_marker(aggregator: Aggregator) -> None:
    exporter = exporter_for(aggregator)
    text = exporter.render(TEXT)[0].decode()
    openmetrics = exporter.render(OPENMETRICS)[0].decode()
    assert "# TYPE yolo_handoffs_total counter\n" in text
    assert "# TYPE yolo_handoffs counter\n" in openmetrics
    assert "# UNIT yolo_handoff_duration_seconds seconds\n" in openmetrics
    assert "# UNIT" not in text and "# EOF" not in text
    assert openmetrics.count("# EOF") == 1 and openmetrics.endswith("\n# EOF\n")
    for spec in cat.CATALOGUE:  # every family, with samples or not
        family = spec.prometheus_family
        assert f"# TYPE {family} {spec.kind.value}\n" in openmetrics
        assert (f"# UNIT {family} {spec.prometheus_unit}\n" in openmetrics) == \
            bool(spec.prometheus_unit)


def test_counts_are_integers_and_the_count_is_the_inf_bucket(aggregator: Aggregator) -> None:
    for duration in (0.001, 0.3, 0.3, 7.0, 1e9):
        send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=duration)
    lines = exporter_for(aggregator).render(OPENMETRICS)[0].decode().splitlines()
    prefix = "yolo_handoff_duration_seconds"
    assert f'{prefix}_bucket{{from_agent="pm",to_agent="dev",le="0.005"}} 1' in lines
    assert f'{prefix}_bucket{{from_agent="pm",to_agent="dev",le="300.0"}} 4' in lines
    assert f'{prefix}_bucket{{from_agent="pm",to_agent="dev",le="+Inf"}} 5' in lines
    assert f'{prefix}_count{{from_agent="pm",to_agent="dev"}} 5' in lines
    assert f'{prefix}_sum{{from_agent="pm",to_agent="dev"}} {0.001 + 0.3 + 0.3 + 7.0 + 1e9!r}' \
        in lines


def test_numbers_are_written_as_the_formats_spell_them() -> None:
    assert [number(v) for v in (math.inf, -math.inf, math.nan, 1.0, 0.1, 1e22, -2.5e-07)] \
        == [b"+Inf", b"-Inf", b"NaN", b"1.0", b"0.1", b"1e+22", b"-2.5e-07"]
    assert [number(v) for v in (3, True, 0)] == [b"3.0", b"1.0", b"0.0"]
    bounds = {b for spec in cat.CATALOGUE for b in spec.buckets}
    for bound in (*bounds, math.inf, 1e6, 123456789.0, 1e-9, 0.5, 1e21):
        assert go_float(bound) == floatToGoString(bound)
    assert go_float(1048576.0) == "1.048576e+06"


def test_label_values_are_escaped_and_names_sorted() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert label_part(("to_agent", "from_agent"), ("y", 'x"é')) == \
        '{from_agent="x\\"é",to_agent="y"'.encode()
    assert label_part((), ()) == b""


def test_the_overflow_series_is_written(clock: FakeClock) -> None:
    aggregator = Aggregator(clock=clock, max_series=2, wall_clock=lambda: 1_800_000_000.0)
    aggregator.connect()
    try:
        for i in range(5):
            send("handoff_completed", from_agent=f"a{i}", to_agent="dev", duration_s=0.1)
        body = exporter_for(aggregator).render(OPENMETRICS)[0]
        found = samples_of(parse(body, True))
        overflow = (("from_agent", "__overflow__"), ("to_agent", "__overflow__"))
        assert found["yolo_handoffs_total", overflow] == 3
        assert found["yolo_handoff_duration_seconds_count", overflow] == 3
        assert found["yolo_telemetry_series_overflow_total",
                     (("metric", "yolo.handoffs"),)] >= 3
        # (each collection overflows the four-mode gauges too: only handoffs compared)
        assert_same_samples(
            {key: value for key, value in found.items() if key[0].startswith("yolo_handoff")},
            {key: value for key, value in expected_samples(aggregator, True).items()
             if key[0].startswith("yolo_handoff")})
    finally:
        aggregator.disconnect()


def test_exemplars_in_openmetrics_only(aggregator: Aggregator) -> None:
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.3)
    send("handoff_completed", from_agent="qa", to_agent="dev", duration_s=0.3)
    at = now()
    set_exemplar(aggregator, ("pm", "dev"), 6, (0.3, at, 2**100 + 5, 77))
    set_exemplar(aggregator, ("pm", "dev"), 15, (math.inf, at, 1, 2))
    exporter = exporter_for(aggregator)
    body = exporter.render(OPENMETRICS)[0]
    [family] = [f for f in parse(body, True) if f.name == "yolo_handoff_duration_seconds"]
    with_exemplar = {(s.labels["from_agent"], s.labels["le"]): s.exemplar
                     for s in family.samples if s.exemplar is not None}
    assert with_exemplar.keys() == {("pm", "0.5"), ("pm", "+Inf")}
    exemplar = with_exemplar["pm", "0.5"]
    assert exemplar.labels == {"trace_id": f"{2**100 + 5:032x}", "span_id": f"{77:016x}"}
    assert exemplar.value == 0.3 and float(exemplar.timestamp) == at
    assert with_exemplar["pm", "+Inf"].value == math.inf
    assert_same_samples(samples_of([family]), {
        key: value for key, value in expected_samples(aggregator, True).items()
        if key[0].startswith("yolo_handoff_duration_seconds")})
    assert b" # {" not in exporter.render(TEXT)[0]


NAMES = ["yolo_handoffs_total", "yolo_handoff_duration_seconds_count",
         "yolo_handoff_duration_seconds_created", "yolo_mode", "yolo_errors_created",
         "yolo_handoff_duration_seconds", "no_such_metric"]


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_the_name_filter_keeps_only_the_samples_named(aggregator: Aggregator,
                                                      openmetrics: bool) -> None:
    """``name[]`` as client_python reads it: sample names; a family without a sample
    left is not written at all. An OpenMetrics histogram keeps its buckets, count and
    sum (the format requires them together)."""
    send_hostile(["pm", "qa"])
    exporter = exporter_for(aggregator)
    accept = OPENMETRICS if openmetrics else TEXT
    full = samples_of(parse(exporter.render(accept)[0], openmetrics))
    body = exporter.render(accept, NAMES)[0]
    families = parse(body, openmetrics)
    buckets = {"yolo_handoff_duration_seconds_bucket", "yolo_handoff_duration_seconds_sum"} \
        if openmetrics else set()
    wanted = {key: value for key, value in full.items() if key[0] in {*NAMES, *buckets}}
    assert_same_samples(samples_of(families), wanted)
    assert {name for name, _ in wanted} == (
        {"yolo_handoffs_total", "yolo_handoff_duration_seconds_count", "yolo_mode"} | buckets
        | ({"yolo_handoff_duration_seconds_created", "yolo_errors_created"} if openmetrics
           else set()))
    assert {f.name for f in families} == {"yolo_handoffs", "yolo_handoff_duration_seconds",
                                          "yolo_mode"} | ({"yolo_errors"} if openmetrics
                                                          else set())
    assert body.endswith(b"# EOF\n") == openmetrics
    assert exporter.render(accept, ["no_such_metric"])[0] == (b"# EOF\n" if openmetrics
                                                              else b"")


def test_label_parts_of_purged_series_are_not_kept(clock: FakeClock) -> None:
    aggregator = Aggregator(clock=clock, stale_after_s=60)
    aggregator.connect()
    try:
        exporter = exporter_for(aggregator)
        for i in range(200):
            send("handoff_completed", from_agent=f"a{i}", to_agent="dev", duration_s=0.1)
        exporter.render(TEXT)
        assert len(exporter.writer._labels[cat.HANDOFFS]) == 200
        clock.advance(120)
        send("handoff_completed", from_agent="new", to_agent="dev", duration_s=0.1)
        body = exporter.render(TEXT)[0]
        assert b'from_agent="a1"' not in body and b'from_agent="new"' in body
        assert len(exporter.writer._labels[cat.HANDOFFS]) == 1
    finally:
        aggregator.disconnect()


def test_scrapes_during_sends_are_consistent(aggregator: Aggregator) -> None:
    """While another thread sends, every scrape parses, each histogram's buckets rise
    to its count, and no counter goes back between two scrapes."""
    import threading

    exporter = exporter_for(aggregator)
    done = threading.Event()

    def sender() -> None:
        i = 0
        while not done.is_set():
            send("handoff_completed", from_agent=f"a{i % 50}", to_agent="dev",
                 duration_s=(i % 400) / 100)
            i += 1

    thread = threading.Thread(target=sender)
    thread.start()
    previous: dict = {}
    try:
        for _ in range(30):
            found = samples_of(parse(exporter.render(OPENMETRICS)[0], True))
            for (name, labels), value in found.items():
                if name == "yolo_handoff_duration_seconds_count":
                    inf = found["yolo_handoff_duration_seconds_bucket",
                                tuple(sorted((*labels, ("le", "+Inf"))))]
                    assert inf == value
                if name.endswith("_total") or name.endswith("_count"):
                    assert value >= previous.get((name, labels), 0)
            previous = found
    finally:
        done.set()
        thread.join()
    assert previous["yolo_handoffs_total", (("from_agent", "a1"), ("to_agent", "dev"))] > 0
