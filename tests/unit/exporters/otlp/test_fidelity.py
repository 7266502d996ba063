"""What the OTLP exporter puts on the wire, decoded with the official protobuf classes:
integer sums, series never recorded, delta temporality, schema URLs, and partial
success answers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

from exporters.otlp.exporter import OtlpExporter
from exporters.otlp.metrics import SCHEMA_URL
from telemetry import catalogue as cat
from telemetry import load_config
from telemetry.aggregation.aggregator import Aggregator
from tests.conftest import FakeClock, send
from tests.support.http_sink import Collector

DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector("")
    yield server
    server.close()


@pytest.fixture
def started(aggregator: Aggregator, collector: Collector) -> Iterator[Any]:
    """``started(environ)``: a real OTLP exporter sending to the collector; exports
    metrics only when the test asks (``export_metrics``)."""
    made: list[OtlpExporter] = []

    def start(environ: dict[str, str] | None = None, tracing: dict | None = None,
              **otlp: Any) -> OtlpExporter:
        config = load_config({"exporters": {"otlp": {
            "enabled": True, "interval_s": 3600, "timeout_s": 2, "endpoint": collector.url,
            **otlp}}, "tracing": tracing or {}}, environ=environ or {})
        exporter = OtlpExporter(config.exporters.otlp, aggregator, config)
        exporter.instance_id = "instance-1"
        exporter.start()
        made.append(exporter)
        return exporter

    yield start
    for exporter in made:
        exporter.stop(2.0)


def metric_requests(collector: Collector) -> list[ExportMetricsServiceRequest]:
    return [ExportMetricsServiceRequest.FromString(body)
            for path, _, body in collector.requests if path == "/v1/metrics"]


def metrics_of(request: ExportMetricsServiceRequest) -> dict[str, Metric]:
    [resource_metrics] = request.resource_metrics
    [scope_metrics] = resource_metrics.scope_metrics
    return {metric.name: metric for metric in scope_metrics.metrics}


def handoff(duration_s: float = 0.3) -> None:
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=duration_s,
         workflow_id="wf-1")


def dropped(aggregator: Aggregator, component: str, reason: str) -> float:
    [family] = [f for f in aggregator.collect() if f.spec is cat.DROPPED]
    return sum(float(s.value) for s in family.samples  # type: ignore[arg-type]
               if s.labels == (component, reason))


def test_counts_are_sent_as_ints_and_seconds_as_doubles(started: Any, collector: Collector,
                                                        clock: FakeClock) -> None:
    exporter = started()
    handoff()
    handoff()
    send("agent_activated", agent="pm", workflow_id="wf-1")
    clock.advance(1.5)  # active for 1.5 s of the aggregator's clock
    send("agent_deactivated", agent="pm", workflow_id="wf-1")
    assert exporter.export_metrics()
    metrics = metrics_of(metric_requests(collector)[-1])
    [point] = metrics["yolo.handoffs"].sum.data_points
    assert (point.WhichOneof("value"), point.as_int) == ("as_int", 2)
    for point in metrics["yolo.telemetry.events"].sum.data_points:
        assert point.WhichOneof("value") == "as_int"
    [active] = metrics["yolo.agent.active"].sum.data_points
    assert (active.WhichOneof("value"), active.as_double) == ("as_double", 1.5)


def test_series_never_recorded_are_not_sent(started: Any, collector: Collector) -> None:
    exporter = started()
    handoff()
    assert exporter.export_metrics()
    metrics = metrics_of(metric_requests(collector)[-1])
    assert "yolo.state.save.duration" not in metrics  # a histogram cell, count 0
    assert "yolo.workflows.started" not in metrics  # a counter cell, 0
    events = {p.attributes[0].value.string_value
              for p in metrics["yolo.telemetry.events"].sum.data_points}
    assert events == {"yolo.handoff_completed"}
    assert "yolo.agents.active" in metrics  # a gauge at 0 is a value


def test_delta_temporality_when_preferred(started: Any, collector: Collector) -> None:
    exporter = started({"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"})
    handoff(0.3)
    handoff(7.0)
    send("workflow_started", workflow_id="wf-1", workflow_type="t")
    assert exporter.export_metrics()
    handoff(0.3)
    assert exporter.export_metrics()
    first, second = (metrics_of(r) for r in metric_requests(collector)[-2:])
    counts, durations = first["yolo.handoffs"].sum, first["yolo.handoff.duration"].histogram
    assert (counts.aggregation_temporality, durations.aggregation_temporality) == \
        (DELTA, DELTA)
    assert counts.is_monotonic
    assert (counts.data_points[0].as_int, durations.data_points[0].count) == (2, 2)
    [count] = second["yolo.handoffs"].sum.data_points
    [duration] = second["yolo.handoff.duration"].histogram.data_points
    assert (count.as_int, duration.count, round(duration.sum, 6)) == (1, 1, 0.3)
    assert sum(duration.bucket_counts) == 1
    # the interval starts where the last one ended
    assert count.start_time_unix_nano == counts.data_points[0].time_unix_nano
    assert "yolo.workflows.started" not in second  # no change: nothing to send
    assert second["yolo.agents.active"].WhichOneof("data") == "gauge"
    # a failed export does not move the start: the next delta covers both intervals
    collector.status = 400
    handoff()
    assert not exporter.export_metrics()
    collector.status = 200
    handoff()
    assert exporter.export_metrics()
    [after] = metrics_of(metric_requests(collector)[-1])["yolo.handoffs"].sum.data_points
    assert after.as_int == 2
    assert after.start_time_unix_nano == count.time_unix_nano


def test_cumulative_stays_the_default(started: Any, collector: Collector) -> None:
    exporter = started()
    handoff()
    assert exporter.export_metrics()
    handoff()
    assert exporter.export_metrics()
    first, second = (metrics_of(r)["yolo.handoffs"].sum
                     for r in metric_requests(collector)[-2:])
    assert second.aggregation_temporality == CUMULATIVE
    assert (first.data_points[0].as_int, second.data_points[0].as_int) == (1, 2)
    assert first.data_points[0].start_time_unix_nano == \
        second.data_points[0].start_time_unix_nano


def test_resource_and_scope_carry_the_schema_url(started: Any, collector: Collector) -> None:
    exporter = started()
    send("workflow_started", workflow_id="wf-1", workflow_type="t")
    send("workflow_completed", workflow_id="wf-1", duration_s=1.0)
    assert exporter.flush(5.0)
    [metrics] = metric_requests(collector)
    spans = [ExportTraceServiceRequest.FromString(body)
             for path, _, body in collector.requests if path == "/v1/traces"]
    assert spans
    for resource_part, scope_part in (
            (metrics.resource_metrics[0], metrics.resource_metrics[0].scope_metrics[0]),
            (spans[0].resource_spans[0], spans[0].resource_spans[0].scope_spans[0])):
        assert resource_part.schema_url == SCHEMA_URL
        assert scope_part.schema_url == SCHEMA_URL
        assert scope_part.scope.name == "yolo-telemetry"


def test_partial_success_is_logged_once_counted_and_shown(
        started: Any, collector: Collector, aggregator: Aggregator,
        caplog: pytest.LogCaptureFixture) -> None:
    # Trace and metric answers share the wire format: field 1 rejected, 2 the message.
    collector.response = ExportMetricsServiceResponse(partial_success=ExportMetricsPartialSuccess(
        rejected_data_points=3, error_message="attribute too long")).SerializeToString()
    exporter = started()
    with caplog.at_level(logging.WARNING, logger="telemetry.exporters.otlp"):
        handoff()
        assert exporter.export_metrics()
        assert exporter.export_metrics()
        send("workflow_started", workflow_id="wf-1", workflow_type="t")
        send("workflow_completed", workflow_id="wf-1", duration_s=1.0)
        assert exporter.flush(5.0)
    assert dropped(aggregator, "otlp", "rejected") == 3 * len(metric_requests(collector))
    assert dropped(aggregator, "tracer", "rejected") >= 3
    health = exporter.health()
    assert health["metrics"]["rejected"] == 3 * len(metric_requests(collector))
    assert health["metrics"]["rejected_message"] == "attribute too long"
    assert health["traces"]["rejected"] >= 3
    warnings = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len([w for w in warnings if "data points" in w]) == 1  # once, not per export
    assert len([w for w in warnings if "spans" in w]) == 1


def test_genai_spans_name_the_configured_provider(started: Any, collector: Collector) -> None:
    exporter = started(tracing={"genai_provider": "openai"}, metrics=False)
    send("workflow_started", workflow_id="wf-1", workflow_type="t")
    send("agent_activated", agent="pm", workflow_id="wf-1")
    handoff()
    send("agent_deactivated", agent="pm", workflow_id="wf-1")
    send("workflow_completed", workflow_id="wf-1", duration_s=1.0)
    assert exporter.flush(5.0)
    spans = {span.name: {a.key: a.value.string_value for a in span.attributes}
             for path, _, body in collector.requests if path == "/v1/traces"
             for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans
             for scope_spans in resource_spans.scope_spans for span in scope_spans.spans}
    genai = [attributes for attributes in spans.values()
             if "gen_ai.operation.name" in attributes]
    assert {"invoke_agent pm"} <= set(spans) and genai
    assert all(attributes["gen_ai.provider.name"] == "openai" for attributes in genai)
    assert all("gen_ai.provider.name" not in attributes for attributes in spans.values()
               if "gen_ai.operation.name" not in attributes)


class _PartialCollector:
    """A real gRPC OTLP receiver that accepts every export and reports 2 items of
    each rejected."""

    def __init__(self) -> None:
        import grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                return trace_service_pb2.ExportTraceServiceResponse(
                    partial_success=trace_service_pb2.ExportTracePartialSuccess(
                        rejected_spans=2, error_message="span rejected"))

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                return ExportMetricsServiceResponse(partial_success=ExportMetricsPartialSuccess(
                    rejected_data_points=2, error_message="point rejected"))

        from concurrent.futures import ThreadPoolExecutor

        self.server = grpc.server(ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.url = f"http://127.0.0.1:{port}"


def test_partial_success_over_grpc_is_counted_and_shown(started: Any,
                                                        aggregator: Aggregator) -> None:
    receiver = _PartialCollector()
    try:
        exporter = started(protocol="grpc", endpoint=receiver.url)
        handoff()
        assert exporter.export_metrics()
        send("workflow_started", workflow_id="wf-1", workflow_type="t")
        send("workflow_completed", workflow_id="wf-1", duration_s=1.0)
        assert exporter.flush(5.0)
        health = exporter.health()
        assert health["metrics"]["rejected"] == dropped(aggregator, "otlp", "rejected") >= 2
        assert health["metrics"]["rejected_message"] == "point rejected"
        assert health["traces"]["rejected"] == dropped(aggregator, "tracer", "rejected") == 2
        assert health["traces"]["rejected_message"] == "span rejected"
    finally:
        receiver.server.stop(0)


def test_cumulative_histograms_carry_min_and_max(started: Any, aggregator: Aggregator,
                                                 collector: Collector) -> None:
    send("state_saved", duration_s=0.5, size_bytes=10)  # a cell observed before tracking
    exporter = started()
    saves = aggregator.state.series[cat.STATE_SAVE_DURATION]
    assert saves.cell(()).tracks_extremes
    for duration in (0.3, 7.0, 0.2):
        handoff(duration)
    send("state_saved", duration_s=0.1, size_bytes=10)
    assert exporter.export_metrics()
    metrics = metrics_of(metric_requests(collector)[-1])
    [point] = metrics["yolo.handoff.duration"].histogram.data_points
    assert (point.HasField("min"), point.min, point.max) == (True, 0.2, 7.0)
    [saved] = metrics["yolo.state.save.duration"].histogram.data_points
    assert not saved.HasField("min") and not saved.HasField("max")  # unknown: left out
    exporter.stop(2.0)
    assert not saves.cell(()).tracks_extremes  # nobody reads them: not tracked


def test_delta_histograms_leave_min_and_max_out(started: Any, collector: Collector) -> None:
    exporter = started({"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"})
    handoff(0.3)
    assert exporter.export_metrics()
    [point] = metrics_of(metric_requests(collector)[-1])[
        "yolo.handoff.duration"].histogram.data_points
    assert not point.HasField("min") and not point.HasField("max")


def test_partial_success_over_https_is_counted_and_shown(
        aggregator: Aggregator, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    import trustme

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(ca_file))  # read by the SDK
    for bundle in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests prefers these
        monkeypatch.delenv(bundle, raising=False)
    collector = Collector("", tls=server_context)
    collector.response = ExportMetricsServiceResponse(partial_success=ExportMetricsPartialSuccess(
        rejected_data_points=2, error_message="over https")).SerializeToString()
    config = load_config({"exporters": {"otlp": {
        "enabled": True, "interval_s": 3600, "timeout_s": 5, "endpoint": collector.url}}},
        environ={})
    exporter = OtlpExporter(config.exporters.otlp, aggregator, config)
    exporter.start()
    try:
        assert exporter._metric_exporter.plain_transport is None  # the SDK's own transport
        handoff()
        assert exporter.export_metrics()
        send("workflow_started", workflow_id="wf-1", workflow_type="t")
        send("workflow_completed", workflow_id="wf-1", duration_s=1.0)
        assert exporter.flush(5.0)
        assert collector.url.startswith("https://") and metric_requests(collector)
        health = exporter.health()
        exports = len(metric_requests(collector))  # flush exports metrics too
        assert (health["metrics"]["rejected"], health["metrics"]["rejected_message"]) == \
            (2 * exports, "over https")
        assert health["traces"]["rejected"] >= 2
        assert dropped(aggregator, "otlp", "rejected") == 2 * exports
    finally:
        exporter.stop(2.0)
        collector.close()
