"""The GenAI client metrics go out over OTLP under their semantic-convention names and
attribute names, as the catalogue declares them, on both the SDK path and the
pre-encoded path (decoded here with opentelemetry.proto)."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporters.otlp.fastpath.metric_encoding import MetricsEncoder, sdk_header
from exporters.otlp.metrics import build_resource, to_metrics_data
from exporters.otlp.points import ExportPoints, ExportSeries
from telemetry.aggregation.aggregator import Aggregator
from tests.conftest import send

RESOURCE = build_resource("yolo", "instance-1", "1.2.3")
SCOPE = InstrumentationScope("yolo-telemetry", "1.2.3")
NOW = 1_700_000_000_000_000_000


def agent_operation_families() -> list[ExportSeries]:
    aggregator = Aggregator()
    aggregator.connect()
    try:
        send("llm_called", agent="dev", model="claude-sonnet", duration_s=1.5,
             input_tokens=1200, output_tokens=300, cached_input_tokens=1000, cost_usd=0.02)
        send("llm_called", agent="dev", model="claude-sonnet", duration_s=0.5,
             input_tokens=10, output_tokens=0, error_type="RateLimited")
        send("tool_completed", agent="dev", tool="pytest", duration_s=2.0, error_type="Exit1")
    finally:
        aggregator.disconnect()
    return ExportPoints().prepare(aggregator.copy_series(), NOW)


def points(request: ExportMetricsServiceRequest) -> dict[str, list[dict[str, object]]]:
    """Metric name -> the attributes of each of its points."""
    found: dict[str, list[dict[str, object]]] = {}
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data = getattr(metric, metric.WhichOneof("data"))
                found[metric.name] = [
                    {a.key: a.value.string_value for a in point.attributes}
                    for point in data.data_points]
    return found


def test_both_paths_send_the_genai_names_and_attributes() -> None:
    families = agent_operation_families()
    sdk = encode_metrics(to_metrics_data(families, RESOURCE, SCOPE, NOW)).SerializeToString()
    encoded, _ = MetricsEncoder(*sdk_header(RESOURCE, SCOPE)).encode(families, NOW)
    assert encoded == sdk
    sent = points(ExportMetricsServiceRequest.FromString(encoded))
    chat = {"gen_ai.agent.name": "dev", "gen_ai.request.model": "claude-sonnet",
            "gen_ai.operation.name": "chat"}
    assert sent["gen_ai.client.operation.duration"] == [chat]
    assert sorted(sent["gen_ai.client.token.usage"], key=lambda a: a["gen_ai.token.type"]) == [
        {**chat, "gen_ai.token.type": kind} for kind in ("cached_input", "input", "output")]
    # the project's own metrics keep the project's names, over OTLP too
    assert sent["yolo.llm.calls"] == [{"agent": "dev", "model": "claude-sonnet"}]
    assert sent["yolo.llm.errors"] == [
        {"agent": "dev", "model": "claude-sonnet", "error_type": "RateLimited"}]
    assert sent["yolo.tool.errors"] == [{"agent": "dev", "tool": "pytest", "error_type": "Exit1"}]
    assert "yolo.llm.call.duration" not in sent and "yolo.llm.token.usage" not in sent


def test_the_genai_histograms_carry_the_recommended_buckets() -> None:
    families = agent_operation_families()
    encoded, _ = MetricsEncoder(*sdk_header(RESOURCE, SCOPE)).encode(families, NOW)
    request = ExportMetricsServiceRequest.FromString(encoded)
    metrics = {m.name: m for rm in request.resource_metrics for sm in rm.scope_metrics
               for m in sm.metrics}
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    assert list(duration.histogram.data_points[0].explicit_bounds) == [
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
    tokens = metrics["gen_ai.client.token.usage"]
    assert tokens.unit == "{token}"
    assert list(tokens.histogram.data_points[0].explicit_bounds)[:3] == [1, 4, 16]
    assert {p.sum for p in tokens.histogram.data_points} == {1210, 300, 1000}
