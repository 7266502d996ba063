"""OpenTelemetry's standard environment variables, as the specification reads them.

One test per variable (or group of variables read together). Where the SDK reads a
variable itself (``OTEL_RESOURCE_ATTRIBUTES``, the span limits), the variable is set
in the process environment as well as passed to the config loader.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporters.otlp.exporter import OtlpExporter
from exporters.otlp.fastpath.metric_http import FastHttpMetricExporter
from exporters.otlp.fastpath.span_grpc import FastGrpcSpanExporter
from telemetry import load_config
from telemetry.aggregation.aggregator import Aggregator
from telemetry.config import ConfigError, TelemetryConfig
from telemetry.runtime import Telemetry
from tests.conftest import send
from tests.support import ROOT
from tests.support.http_sink import Collector


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector("")
    yield server
    server.close()


def otlp_config(environ: dict[str, str], **otlp: Any) -> TelemetryConfig:
    return load_config({"exporters": {"otlp": {"enabled": True, "interval_s": 3600, **otlp}}},
                       environ=environ)


def run_workflow() -> None:
    send("workflow_started", workflow_id="wf-1", workflow_type="t")
    send("agent_activated", agent="pm", workflow_id="wf-1")
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.3,
         workflow_id="wf-1")
    send("agent_deactivated", agent="pm", workflow_id="wf-1")
    send("workflow_completed", workflow_id="wf-1", duration_s=1.0)


def export_once(config: TelemetryConfig, aggregator: Aggregator,
                cls: type[OtlpExporter] = OtlpExporter) -> OtlpExporter:
    """Start an exporter with ``config``, run one workflow, flush, stop."""
    exporter = cls(config.exporters.otlp, aggregator, config)
    exporter.instance_id = "config-instance"
    exporter.start()
    try:
        run_workflow()
        assert exporter.flush(5.0)
    finally:
        exporter.stop(2.0)
    return exporter


def set_environment(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    for key, value in environ.items():
        monkeypatch.setenv(key, value)


# -- resource and service name ------------------------------------------------------


def test_service_name_ranks_otel_service_name_then_resource_attributes_then_the_file() -> None:
    attributes = "service.name=from-attributes,deployment.environment=prod"
    file = {"service_name": "from-file"}
    assert load_config(file, environ={}).service_name == "from-file"
    assert load_config(file, environ={"OTEL_RESOURCE_ATTRIBUTES": attributes}
                       ).service_name == "from-attributes"
    assert load_config(file, environ={"OTEL_RESOURCE_ATTRIBUTES": attributes,
                                      "OTEL_SERVICE_NAME": "from-service-name"}
                       ).service_name == "from-service-name"
    assert load_config(file, environ={"OTEL_RESOURCE_ATTRIBUTES": "team=a"}
                       ).service_name == "from-file"


def test_resource_attributes_reach_the_wire_and_keep_their_instance_id(
        monkeypatch: pytest.MonkeyPatch, aggregator: Aggregator, collector: Collector) -> None:
    environ = {"OTEL_RESOURCE_ATTRIBUTES":
               "service.name=billing,service.instance.id=pod-7,deployment.environment=prod"}
    set_environment(monkeypatch, environ)
    export_once(otlp_config(environ, endpoint=collector.url), aggregator)
    metrics = [ExportMetricsServiceRequest.FromString(body)
               for path, _, body in collector.requests if path == "/v1/metrics"]
    spans = [ExportTraceServiceRequest.FromString(body)
             for path, _, body in collector.requests if path == "/v1/traces"]
    assert metrics and spans
    for request in metrics + spans:
        [resource] = [r.resource for r in getattr(request, "resource_metrics", None)
                      or request.resource_spans]
        attributes = {a.key: a.value.string_value for a in resource.attributes}
        assert attributes["service.name"] == "billing"
        assert attributes["service.instance.id"] == "pod-7"
        assert attributes["deployment.environment"] == "prod"


# -- per-signal headers, protocol, and the default endpoint -------------------------


def test_signal_headers_replace_the_generic_ones(aggregator: Aggregator,
                                                 collector: Collector) -> None:
    environ = {"OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=generic,x-generic=1",
               "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=traces"}
    export_once(otlp_config(environ, endpoint=collector.url), aggregator)
    headers = {path: {k.lower(): v for k, v in sent.items()}
               for path, sent, _ in collector.requests}
    assert headers["/v1/traces"]["x-tenant"] == "traces"
    assert "x-generic" not in headers["/v1/traces"]  # replaced, not merged (the spec)
    assert headers["/v1/metrics"]["x-tenant"] == "generic"
    config = otlp_config({"OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-m=1"}).exporters.otlp
    assert (config.signal_headers("metrics"), config.signal_headers("traces")) == \
        ({"x-m": "1"}, {})


def test_signal_protocols_choose_each_signals_exporter(aggregator: Aggregator) -> None:
    environ = {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
               "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    otlp = otlp_config(environ).exporters.otlp
    assert (otlp.signal_protocol("traces"), otlp.signal_protocol("metrics")) == \
        ("grpc", "http/protobuf")
    assert otlp.signal_endpoint("traces") == "http://127.0.0.1:4317"
    assert otlp.signal_endpoint("metrics") == "http://127.0.0.1:4318/v1/metrics"
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"
    config = otlp_config(environ, endpoint=dead, timeout_s=0.2)
    exporter = OtlpExporter(config.exporters.otlp, aggregator, config)
    exporter.start()
    try:
        assert isinstance(exporter._span_exporter.inner, FastGrpcSpanExporter)  # type: ignore[union-attr]
        assert isinstance(exporter._metric_exporter, FastHttpMetricExporter)
    finally:
        exporter.stop(0.5)


def test_signal_timeouts_replace_the_generic_one(aggregator: Aggregator) -> None:
    environ = {"OTEL_EXPORTER_OTLP_TIMEOUT": "20000",
               "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "300",
               "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "4000"}
    with socket.socket() as silent:  # accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = otlp_config(environ, endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}")
        otlp = config.exporters.otlp
        assert (otlp.timeout_s, otlp.metrics_timeout_s, otlp.traces_timeout_s) == (20, 0.3, 4)
        exporter = OtlpExporter(otlp, aggregator, config)
        exporter.start()
        try:
            inner = exporter._span_exporter.inner  # type: ignore[union-attr]
            assert getattr(inner, "_client", inner)._timeout == 4  # no _client before 1.45.1
            started = time.monotonic()
            assert exporter.export_metrics() is False
            assert time.monotonic() - started < 5  # the metrics' 0.3 s, not the generic 20 s
        finally:
            exporter.stop(0.5)


def test_grpc_without_an_endpoint_goes_to_port_4317() -> None:
    default = load_config(None, environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert default.exporters.otlp.signal_endpoint("metrics") == "http://127.0.0.1:4317"
    assert default.exporters.otlp.signal_endpoint("traces") == "http://127.0.0.1:4317"
    http = load_config(None, environ={}).exporters.otlp
    assert http.signal_endpoint("traces") == "http://127.0.0.1:4318/v1/traces"
    shipped = load_config(ROOT / "config" / "telemetry.yaml",
                          environ={"YOLO_TELEMETRY__EXPORTERS__OTLP__PROTOCOL": "grpc"})
    assert shipped.exporters.otlp.signal_endpoint("traces") == "http://127.0.0.1:4317"


# -- invalid values: warn and use the default ---------------------------------------


@pytest.mark.parametrize(("variable", "value", "key", "default"), [
    ("OTEL_METRIC_EXPORT_INTERVAL", "soon", ("exporters", "otlp", "interval_s"), 10.0),
    ("OTEL_METRIC_EXPORT_INTERVAL", "inf", ("exporters", "otlp", "interval_s"), 10.0),
    ("OTEL_METRIC_EXPORT_INTERVAL", "-5", ("exporters", "otlp", "interval_s"), 10.0),
    ("OTEL_TRACES_SAMPLER", "jaeger_remote", ("tracing", "sampler"),
     "parentbased_traceidratio"),
    ("OTEL_TRACES_SAMPLER_ARG", "7", ("tracing", "sampler_ratio"), 1.0),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", ("exporters", "otlp", "protocol"),
     "http/protobuf"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "nan", ("exporters", "otlp", "timeout_s"), 10.0),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "0", ("tracing", "batch", "max_queue_size"), 2048),
    ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes",
     ("exporters", "otlp", "temporality_preference"), "cumulative"),
    ("OTEL_SDK_DISABLED", "yes", ("exporters", "otlp", "metrics"), True),
    ("OTEL_TRACES_EXPORTER", "zipkin", ("exporters", "otlp", "traces"), True),
])
def test_invalid_otel_values_are_warned_about_and_ignored(
        caplog: pytest.LogCaptureFixture, variable: str, value: str, key: tuple[str, ...],
        default: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="telemetry.config"):
        config = load_config({"exporters": {"otlp": {"enabled": True}}},
                             environ={variable: value, "OTEL_SERVICE_NAME": "still-read"})
    node: Any = config
    for part in key:
        node = getattr(node, part)
    assert node == default
    assert config.service_name == "still-read"
    assert any(variable in record.getMessage() for record in caplog.records)


def test_invalid_values_of_our_own_overrides_stay_errors() -> None:
    with pytest.raises(ConfigError, match="YOLO_TELEMETRY__EXPORTERS__OTLP__INTERVAL_S"):
        load_config({}, environ={"YOLO_TELEMETRY__EXPORTERS__OTLP__INTERVAL_S": "-1",
                                 "OTEL_METRIC_EXPORT_INTERVAL": "soon"})


# -- switches -----------------------------------------------------------------------


def test_sdk_disabled_turns_otlp_off_and_health_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {"OTEL_SDK_DISABLED": "TRUE"}
    set_environment(monkeypatch, environ)  # the SDK reads it too
    config = load_config({"server": {"enabled": False},
                          "exporters": {"otlp": {"enabled": True, "interval_s": 0.05}}},
                         environ=environ)
    tel = Telemetry(config).start()
    try:
        check = tel.health()["checks"]["exporter:otlp"]
        assert check["status"] == "disabled"
        assert tel.health()["status"] == "healthy"
        assert tel.exporters["otlp"].tracer is None
    finally:
        tel.stop()
    assert load_config({}, environ={"OTEL_SDK_DISABLED": "false"}).exporters.otlp.metrics


@pytest.mark.parametrize(("variable", "signal"), [("OTEL_TRACES_EXPORTER", "traces"),
                                                  ("OTEL_METRICS_EXPORTER", "metrics")])
def test_exporter_none_turns_that_signal_off(variable: str, signal: str) -> None:
    otlp = otlp_config({variable: "none"}).exporters.otlp
    other = "metrics" if signal == "traces" else "traces"
    assert getattr(otlp, signal) is False
    assert getattr(otlp, other) is True
    assert getattr(otlp_config({variable: "otlp"}).exporters.otlp, signal) is True


# -- span limits (the SDK's SpanLimits reads them) ----------------------------------


class InMemoryOtlp(OtlpExporter):
    def make_span_exporter(self) -> InMemorySpanExporter:
        self.memory = InMemorySpanExporter()
        return self.memory


def test_span_attribute_count_limit_is_applied(monkeypatch: pytest.MonkeyPatch,
                                               aggregator: Aggregator) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "1")
    exporter = export_once(otlp_config({}, metrics=False), aggregator, InMemoryOtlp)
    spans = exporter.memory.get_finished_spans()  # type: ignore[attr-defined]
    assert spans
    assert all(len(span.attributes or {}) <= 1 for span in spans)
    [workflow] = [span for span in spans if span.name.startswith("invoke_workflow")]
    assert list(workflow.attributes or {}) == ["gen_ai.operation.name"]  # the first one


def test_attribute_length_limit_does_not_cut_span_names(monkeypatch: pytest.MonkeyPatch,
                                                        aggregator: Aggregator) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    exporter = export_once(otlp_config({}, metrics=False), aggregator, InMemoryOtlp)
    spans = exporter.memory.get_finished_spans()  # type: ignore[attr-defined]
    names = {span.name for span in spans}
    assert "invoke_agent pm" in names
    assert all(len(value) <= 4 for span in spans for value in (span.attributes or {}).values()
               if isinstance(value, str))


# -- propagators (the SDK's opentelemetry.propagate reads OTEL_PROPAGATORS) ---------

_PROPAGATION_SCRIPT = """
import json
from opentelemetry import baggage, context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from telemetry.tracing import propagation

span = NonRecordingSpan(SpanContext(0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331,
                                    False, TraceFlags(1)))
ctx = baggage.set_baggage("tenant", "t1", trace.set_span_in_context(span))
token = context.attach(ctx)
payload = propagation.inject({})
context.detach(token)
extracted = propagation.extract(payload)
print(json.dumps({"payload": payload, "fields": propagation.signal_fields(payload),
                  "baggage": dict(baggage.get_all(extracted))}))
"""


def propagate_with(value: str | None) -> dict[str, Any]:
    import json

    environ = {k: v for k, v in os.environ.items() if k != "OTEL_PROPAGATORS"}
    if value is not None:
        environ["OTEL_PROPAGATORS"] = value
    result = subprocess.run([sys.executable, "-c", _PROPAGATION_SCRIPT], env=environ,
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_otel_propagators_choose_what_a_payload_carries() -> None:
    default = propagate_with(None)  # tracecontext,baggage
    assert default["payload"]["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c")
    assert default["payload"]["baggage"] == "tenant=t1"
    assert default["baggage"] == {"tenant": "t1"}
    only_baggage = propagate_with("baggage")
    assert "traceparent" not in only_baggage["payload"]
    assert only_baggage["payload"]["baggage"] == "tenant=t1"
    assert only_baggage["fields"] == {}
    assert propagate_with("none")["payload"] == {}
    unknown = propagate_with("no-such-propagator")  # warned about; W3C trace context
    assert unknown["payload"]["traceparent"].startswith("00-0af7651916cd43dd")
