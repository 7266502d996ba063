"""Exemplars: a histogram observation made while a sampled span is current keeps that
span's ids in its bucket, while tracing runs and only then."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context

from exporters.otlp.points import ExportPoints
from exporters.prometheus import PrometheusConfig, PrometheusExporter
from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.collection import SeriesCopy
from telemetry.aggregation.handlers.table import OBSERVES_HISTOGRAM
from telemetry.catalogue import Kind
from telemetry.model import HistogramValue
from telemetry.signals import CONTRACT
from tests.conftest import FakeClock, send
from tests.unit.tracing.test_tracing import Traced

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture
def traced(aggregator: Aggregator, clock: FakeClock) -> Iterator[Traced]:
    made: list[Traced] = []

    def make(**tracing: object) -> Traced:
        made.append(Traced(aggregator, clock, **tracing))
        return made[-1]

    token = otel_context.attach(otel_context.Context())
    yield make  # type: ignore[misc]
    otel_context.detach(token)
    for item in made:
        item.tracer.close()
        item.provider.shutdown()


def handoff_value(aggregator: Aggregator) -> HistogramValue:
    [family] = [f for f in aggregator.collect() if f.spec is cat.HANDOFF_DURATION]
    [sample] = family.samples
    assert isinstance(sample.value, HistogramValue)
    return sample.value


def test_an_observation_inside_a_sampled_span_keeps_its_ids(traced,
                                                           aggregator: Aggregator) -> None:
    t = traced()
    sent_at = aggregator._clock() + aggregator.state.wall_offset  # a fake clock: still
    send("workflow_started", workflow_id="wf")
    send("agent_activated", agent="pm", workflow_id="wf")
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.3,
         workflow_id="wf")
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.31,
         workflow_id="wf")  # the same bucket: the latest stays
    send("agent_deactivated", agent="pm", workflow_id="wf")
    send("workflow_completed", workflow_id="wf", duration_s=1.0)
    value = handoff_value(aggregator)
    pm = next(s for s in t.spans() if s.name == "invoke_agent pm")
    kept = [e for e in value.exemplars if e is not None]
    assert len(kept) == 1
    observed, at, trace_id, span_id = kept[0]
    assert observed == 0.31
    assert at == sent_at  # the send's time: its monotonic time plus the wall offset
    assert (trace_id, span_id) == (pm.context.trace_id, pm.context.span_id)
    bucket = value.exemplars.index(kept[0])
    assert value.bucket_counts[bucket] == 2


def test_no_exemplar_without_a_sampled_span(traced, aggregator: Aggregator) -> None:
    traced(sampler_ratio=0.0)
    send("agent_activated", agent="pm")
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.3)
    send("agent_deactivated", agent="pm")
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.3)
    assert handoff_value(aggregator).exemplars is None


def histogram_cells(aggregator: Aggregator) -> list:
    return [cell for spec, series in aggregator.state.series.items()
            if spec.kind is Kind.HISTOGRAM for cell in series.cells.values()]


def test_without_tracing_no_cell_keeps_exemplars(traced, aggregator: Aggregator) -> None:
    other = Aggregator()  # another instance in the process: not traced, not touched
    send("state_saved", duration_s=0.1, size_bytes=1)  # a cell made before the tracer
    t = traced()
    assert {cell.exemplar_source for cell in histogram_cells(aggregator)} == \
        {aggregator._exemplar}
    assert {cell.exemplar_source for cell in histogram_cells(other)} == {None}
    t.tracer.close()
    assert {cell.exemplar_source for cell in histogram_cells(aggregator)} == {None}
    send("agent_activated", agent="pm")  # no tracer: no span is current
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.3)
    assert handoff_value(aggregator).exemplars is None
    assert aggregator.state.series[cat.HANDOFF_DURATION].cell(("pm", "dev")) \
        .exemplar_source is None


def test_metrics_show_exemplars_in_openmetrics_only(traced, aggregator: Aggregator) -> None:
    traced()
    send("agent_activated", agent="pm")
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.3)
    exporter = PrometheusExporter(PrometheusConfig(), aggregator, None)
    [(_, _, trace_id, span_id)] = filter(None, handoff_value(aggregator).exemplars)
    openmetrics, content_type = exporter.render(OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    line = next(line for line in openmetrics.decode().splitlines() if " # {" in line)
    assert line.startswith('yolo_handoff_duration_seconds_bucket{from_agent="pm",to_agent="dev",'
                           'le="0.5"}')
    assert f'span_id="{span_id:016x}",trace_id="{trace_id:032x}"}} 0.3 ' in line
    text, _ = exporter.render("text/plain")
    assert b" # {" not in text


def test_delta_exports_send_the_exemplars_kept_since_the_last_one() -> None:
    now = time.time()
    old, new = (0.1, now - 100, 1, 2), (0.2, now, 3, 4)
    points = ExportPoints(delta=True)
    spec = cat.HANDOFF_DURATION
    first = SeriesCopy(spec, [("pm", "dev")], [(1, 0) + (0,) * 14 + (0.1,)], [now - 200],
                       [None], [(old,) + (None,) * 15])
    second = SeriesCopy(spec, [("pm", "dev")], [(1, 1) + (0,) * 14 + (0.3,)], [now - 200],
                        [None], [(old, new) + (None,) * 14])
    points.prepare([first], int((now - 50) * 1e9))
    points.commit()
    [series] = points.prepare([second], int(now * 1e9) + 1)
    assert series.values == [(0, 1) + (0,) * 14 + (0.3 - 0.1,)]
    assert series.exemplars == [(None, new) + (None,) * 14]


SAMPLE_VALUES = {"name": "x", "duration": 0.5, "count": 3, "amount": 0.25,
                 "mode": "paused", "key": "k", "exception": ValueError("boom")}


def histogram_count(agg: Aggregator) -> int:
    return sum(sum(cell.counts) for spec, series in agg.state.series.items()
               if spec.kind is Kind.HISTOGRAM for _, cell in series.items())


def test_exactly_the_signals_that_observe_a_histogram_read_the_span_at_send() -> None:
    """Reading the current span costs every send; only an event whose handler observes
    a histogram has a use for it (its exemplar). Every field given, optional ones too."""
    observing = set()
    for spec in CONTRACT:
        agg = Aggregator()
        agg.connect()
        try:
            fields = {name: SAMPLE_VALUES[kind]
                      for name, kind in {**spec.required, **spec.optional}.items()}
            before = histogram_count(agg)
            spec.signal.send(None, **fields)
            agg.run_pending()
            assert not agg.invalid_events(), (spec.name, agg.invalid_events())
            if histogram_count(agg) > before:
                observing.add(spec.name)
        finally:
            agg.disconnect()
    assert observing == OBSERVES_HISTOGRAM
