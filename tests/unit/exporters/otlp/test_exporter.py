"""OTLP exporter in process: metric translation, lifecycle, failures, config."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporters.otlp.exporter import OtlpConfig, OtlpExporter
from exporters.otlp.metrics import build_resource, to_metrics_data
from exporters.otlp.points import ExportPoints
from telemetry import catalogue as cat
from telemetry import load_config
from telemetry.aggregation.aggregator import Aggregator
from telemetry.config import ConfigError
from telemetry.model import Family, HistogramValue, Sample
from tests.conftest import FakeClock, send


class FakeMetricExporter(MetricExporter):
    """Records what it is given; answers ``result``."""

    def __init__(self) -> None:
        super().__init__()
        self.exported: list[MetricsData] = []
        self.result = MetricExportResult.SUCCESS
        self.shut = False

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        self.exported.append(metrics_data)
        return self.result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.shut = True


class FakeOtlp(OtlpExporter):
    """The real exporter with in-memory sinks instead of the network."""

    def make_metric_exporter(self) -> MetricExporter:
        self.fake_metrics = FakeMetricExporter()
        return self.fake_metrics

    def make_span_exporter(self) -> InMemorySpanExporter:
        self.fake_spans = InMemorySpanExporter()
        return self.fake_spans


def make(aggregator: Aggregator, otlp: dict | None = None, tracing: dict | None = None,
         cls: type[OtlpExporter] = FakeOtlp) -> OtlpExporter:
    config = load_config({"exporters": {"otlp": {"enabled": True, **(otlp or {})}},
                          "tracing": tracing or {}}, environ={})
    exporter = cls(config.exporters.otlp, aggregator, config)
    exporter.instance_id = "instance-1"
    return exporter


def feed() -> None:
    send("workflow_started", workflow_id="wf-1", workflow_type="t")
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.3, workflow_id="wf-1")
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=7.0, workflow_id="wf-1")
    send("context_updated", agent="pm", items=4, tokens=900)
    send("workflow_completed", workflow_id="wf-1", duration_s=12.0)


def by_name(data: MetricsData) -> dict[str, Any]:
    [resource_metrics] = data.resource_metrics
    [scope_metrics] = resource_metrics.scope_metrics
    return {metric.name: metric for metric in scope_metrics.metrics}


def _recorded(spec: cat.MetricSpec, sample: Sample) -> bool:
    if isinstance(sample.value, HistogramValue):
        return sample.value.count > 0
    return spec.kind is cat.Kind.GAUGE or sample.value != 0


@pytest.fixture
def still(clock: FakeClock) -> Iterator[Aggregator]:
    """An aggregator whose wall clock stands still as its monotonic one does: the
    timestamp gauges (monotonic time plus the wall offset) then read the same in two
    collections, however long the translation between them takes."""
    agg = Aggregator(clock=clock, wall_clock=lambda: 1_800_000_000.0)
    agg.connect()
    yield agg
    agg.disconnect()


def test_translation_matches_the_catalogue_and_the_aggregates(still: Aggregator) -> None:
    aggregator = still
    feed()
    resource = build_resource("yolo", "instance-1", "1.2.3")
    data = to_metrics_data(ExportPoints().prepare(aggregator.copy_series(), 123), resource,
                           InstrumentationScope("yolo-telemetry", "1.2.3"), now_ns=123)
    metrics = by_name(data)
    assert data.resource_metrics[0].resource.attributes["service.instance.id"] == "instance-1"
    assert data.resource_metrics[0].resource.attributes["service.version"] == "1.2.3"
    # what collect() holds, but the counters and histograms never recorded in
    families = [Family(f.spec, tuple(s for s in f.samples if _recorded(f.spec, s)))
                for f in aggregator.collect()]
    nonempty = {f.spec.otlp_name: f for f in families if f.samples}
    assert set(metrics) == set(nonempty)
    for name, metric in metrics.items():
        family = nonempty[name]
        assert (metric.unit, metric.description) == (family.spec.unit, family.spec.help)
        points = {tuple(p.attributes.values()): p for p in metric.data.data_points}
        assert len(points) == len(family.samples)
        for sample in family.samples:
            point = points[sample.labels]
            assert point.start_time_unix_nano == int(sample.created * 1e9)
            assert point.time_unix_nano == 123
            assert tuple(point.attributes) == family.spec.labels
            if isinstance(sample.value, HistogramValue):
                assert tuple(point.bucket_counts) == sample.value.bucket_counts
                assert (point.count, point.sum) == (sample.value.count, sample.value.sum)
            else:  # sums of counts are ints, other values doubles
                counts = family.spec.kind is cat.Kind.COUNTER and family.spec.unit[0] == "{"
                number = int if counts else float
                assert point.value == sample.value and type(point.value) is number
    handoffs = metrics["yolo.handoffs"].data
    assert isinstance(handoffs, Sum) and handoffs.is_monotonic
    assert handoffs.aggregation_temporality is AggregationTemporality.CUMULATIVE
    assert handoffs.data_points[0].value == 2.0
    assert isinstance(metrics["yolo.context.tokens"].data, Gauge)
    duration = metrics["yolo.handoff.duration"].data
    assert isinstance(duration, Histogram)
    assert duration.aggregation_temporality is AggregationTemporality.CUMULATIVE
    [point] = duration.data_points
    assert tuple(point.explicit_bounds) == cat.HANDOFF_DURATION.buckets
    assert len(point.bucket_counts) == len(cat.HANDOFF_DURATION.buckets) + 1
    assert point.bucket_counts[cat.HANDOFF_DURATION.buckets.index(0.5)] == 1  # 0.3 s
    assert point.bucket_counts[cat.HANDOFF_DURATION.buckets.index(10.0)] == 1  # 7 s
    assert metrics["yolo.handoff.duration"].unit == "s"


def test_start_time_is_stable_across_exports(aggregator: Aggregator) -> None:
    exporter = make(aggregator, {"interval_s": 3600})
    exporter.start()
    try:
        feed()
        assert exporter.export_metrics()
        send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=1.0)
        assert exporter.export_metrics()
    finally:
        exporter.stop()
    first, second = (by_name(d)["yolo.handoffs"].data.data_points[0]
                     for d in exporter.fake_metrics.exported[:2])
    assert first.start_time_unix_nano == second.start_time_unix_nano
    assert (first.value, second.value) == (2.0, 3.0)
    assert second.time_unix_nano >= first.time_unix_nano


def test_exports_on_its_interval_and_once_more_at_stop(aggregator: Aggregator) -> None:
    exporter = make(aggregator, {"interval_s": 0.05})
    exporter.start()
    deadline = time.monotonic() + 5
    while len(exporter.fake_metrics.exported) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(exporter.fake_metrics.exported) >= 2
    feed()
    exporter.stop()
    exporter.stop()  # idempotent
    last = by_name(exporter.fake_metrics.exported[-1])
    assert last["yolo.workflows"].data.data_points[0].value == 1.0
    assert exporter.fake_metrics.shut
    assert exporter.health()["metrics"]["status"] == "ok"


def test_failures_are_counted_shown_and_recovered(aggregator: Aggregator) -> None:
    exporter = make(aggregator, {"interval_s": 3600}, {"enabled": False})
    exporter.start()
    try:
        exporter.fake_metrics.result = MetricExportResult.FAILURE
        assert exporter.export_metrics() is False
        assert exporter.flush() is False
        health = exporter.health()
        assert health["status"] == "failing" and health["failures"] == 2
        assert "metric export" in health["last_error"]
        assert aggregator.value(cat.EXPORTER_ERRORS, ("otlp",)) == 2
        exporter.fake_metrics.result = MetricExportResult.SUCCESS
        assert exporter.export_metrics() is True
        assert exporter.health()["status"] == "ok"
    finally:
        exporter.stop()


def test_exporter_exception_is_reported_not_raised(aggregator: Aggregator) -> None:
    exporter = make(aggregator, {"interval_s": 3600}, {"enabled": False})
    exporter.start()
    try:
        def boom(*args: Any, **kwargs: Any) -> MetricExportResult:
            raise ValueError("encoding bug")

        exporter.fake_metrics.export = boom  # type: ignore[method-assign]
        assert exporter.export_metrics() is False
        assert exporter.health()["last_error"] == "ValueError: encoding bug"
    finally:
        exporter.stop()


def test_traces_go_through_the_batch_processor_and_flush(aggregator: Aggregator) -> None:
    exporter = make(aggregator, {"interval_s": 3600, "metrics": False})
    exporter.start()
    feed()
    assert exporter.fake_spans.get_finished_spans() == ()  # batched, not sent per span
    assert exporter.flush()
    names = sorted(span.name for span in exporter.fake_spans.get_finished_spans())
    assert names == ["handoff pm -> dev", "handoff pm -> dev", "invoke_workflow t"]
    resource = exporter.fake_spans.get_finished_spans()[0].resource
    assert resource.attributes["service.instance.id"] == "instance-1"
    exporter.stop()
    assert set(exporter.health()) >= {"traces"} and "metrics" not in exporter.health()


def test_tracing_needs_both_switches(aggregator: Aggregator) -> None:
    assert make(aggregator, {"traces": True}, {"enabled": False}).tracing_enabled is False
    assert make(aggregator, {"traces": False}, {"enabled": True}).tracing_enabled is False
    assert make(aggregator, {"traces": True}, {"enabled": True}).tracing_enabled is True


def test_span_export_failure_is_counted(aggregator: Aggregator) -> None:
    exporter = make(aggregator, {"interval_s": 3600, "metrics": False})
    exporter.start()
    try:
        exporter.fake_spans.export = lambda spans: SpanExportResult.FAILURE  # type: ignore
        feed()
        exporter.flush()
        assert exporter.health()["traces"]["status"] == "failing"
        assert aggregator.value(cat.DROPPED, ("tracer", "export_failed")) == 3
        assert aggregator.value(cat.EXPORTER_ERRORS, ("otlp",)) == 1
    finally:
        exporter.stop()


def test_full_span_queue_drops_are_counted(aggregator: Aggregator) -> None:
    release = threading.Event()
    exporter = make(aggregator, {"interval_s": 3600, "metrics": False},
                    {"batch": {"max_queue_size": 4, "max_export_batch_size": 4,
                               "schedule_delay_ms": 3_600_000}})
    exporter.start()
    try:
        # The worker takes the first full batch and blocks in export; the queue fills.
        exporter.fake_spans.export = lambda spans: (release.wait(10), SpanExportResult.SUCCESS)[1]
        for number in range(20):
            send("decision_made", agent="pm", decision_type="x", duration_s=0.1,
                 workflow_id=f"wf-{number}")
        dropped = aggregator.value(cat.DROPPED, ("tracer", "queue_full"))
        assert 12 <= dropped <= 16
    finally:
        release.set()
        exporter.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_dead_collector_is_reported_and_counted(aggregator: Aggregator, protocol: str) -> None:
    """Real OTLP exporters against a closed port: failing in /health, counted, retried."""
    exporter = make(aggregator, {"endpoint": f"http://127.0.0.1:{free_port()}",
                                 "protocol": protocol, "interval_s": 3600, "timeout_s": 0.3},
                    cls=OtlpExporter)
    exporter.start()
    try:
        feed()
        assert exporter.export_metrics() is False
        assert exporter.flush(timeout_s=5) is False
        health = exporter.health()
        assert health["status"] == "failing"
        assert health["metrics"]["status"] == health["traces"]["status"] == "failing"
        assert aggregator.value(cat.EXPORTER_ERRORS, ("otlp",)) >= 3
        assert aggregator.value(cat.DROPPED, ("tracer", "export_failed")) == 3
    finally:
        exporter.stop(timeout_s=2)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_stop_is_bounded_when_the_collector_is_dead(aggregator: Aggregator,
                                                    protocol: str) -> None:
    """With a 30 s export timeout, stop(1.5) still returns in time and interrupts retries."""
    exporter = make(aggregator, {"endpoint": f"http://127.0.0.1:{free_port()}",
                                 "protocol": protocol, "interval_s": 3600, "timeout_s": 30},
                    cls=OtlpExporter)
    exporter.start()
    feed()
    started = time.monotonic()
    exporter.stop(timeout_s=1.5)
    assert time.monotonic() - started < 2.5
    deadline = time.monotonic() + 5  # the interrupted exports report their failure
    while exporter.health()["metrics"]["status"] != "failing" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert exporter.health()["metrics"]["status"] == "failing"


def test_environment_maps_onto_the_otlp_keys() -> None:
    config = load_config({}, environ={
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,x-tenant=t1",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4317",
        "OTEL_METRIC_EXPORT_INTERVAL": "15000",
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_BSP_MAX_QUEUE_SIZE": "100",
        "OTEL_BSP_SCHEDULE_DELAY": "250",
    })
    otlp = config.exporters.otlp
    assert (otlp.endpoint, otlp.protocol, otlp.timeout_s, otlp.interval_s) == \
        ("http://collector:4317", "grpc", 2.5, 15.0)
    assert otlp.headers == {"Authorization": "Bearer abc", "x-tenant": "t1"}
    assert otlp.signal_endpoint("traces") == "http://traces:4317"
    assert otlp.signal_endpoint("metrics") == "http://collector:4317"
    assert (config.tracing.sampler, config.tracing.sampler_ratio) == ("traceidratio", 0.25)
    assert (config.tracing.batch.max_queue_size, config.tracing.batch.schedule_delay_ms) == \
        (100, 250)
    with pytest.raises(ConfigError, match="YOLO_TELEMETRY__EXPORTERS__OTLP__PROTOCOL"):
        load_config({}, environ={"YOLO_TELEMETRY__EXPORTERS__OTLP__PROTOCOL": "http/json"})


def test_http_endpoints_get_the_signal_path() -> None:
    config = OtlpConfig(endpoint="http://collector:4318/")
    assert config.signal_endpoint("metrics") == "http://collector:4318/v1/metrics"
    assert config.signal_endpoint("traces") == "http://collector:4318/v1/traces"
    with pytest.raises(ValueError):
        OtlpConfig(endpoint="http://bad host")


def test_telemetry_passes_its_instance_id(start_telemetry) -> None:
    tel = start_telemetry(exporters={"otlp": {"enabled": True, "interval_s": 3600,
                                              "endpoint": f"http://127.0.0.1:{free_port()}",
                                              "timeout_s": 0.5}})
    assert tel.exporters["otlp"].instance_id == tel.instance_id == tel.health()["instance_id"]
    assert "exporter:otlp" in tel.health()["checks"]
