"""The metric encoding writes what the SDK's encoder writes for the same series, byte
for byte, and the OTLP metric exporters send it (falling back to the SDK when they
cannot)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporters.otlp.exporter import OtlpExporter
from exporters.otlp.fastpath import metric_encoding as otlp_metric_encoding
from exporters.otlp.fastpath.metric_encoding import MetricsEncoder, sdk_header
from exporters.otlp.fastpath.metric_grpc import FastGrpcMetricExporter
from exporters.otlp.fastpath.metric_http import FastHttpMetricExporter
from exporters.otlp.fastpath.sdk_path import http_client_available
from exporters.otlp.metrics import build_resource, to_metrics_data
from exporters.otlp.points import ExportPoints, ExportSeries
from telemetry import load_config
from telemetry.aggregation.aggregator import Aggregator
from telemetry.catalogue import Kind, MetricSpec
from telemetry.cli.simulator import ReferenceOrchestrator
from tests.support.http_sink import Collector

RESOURCE = Resource.create({"service.name": "yolo", "n": -5, "big": 2**62, "f": 1.5,
                            "b": False, "names": ("x", "y")})
SCOPE = InstrumentationScope("yolo-telemetry", "1.2.3")
HEADERS = [
    (build_resource("yolo", "instance-1", "1.2.3"), SCOPE),
    (RESOURCE, InstrumentationScope("s", None, "https://schema/1", {"k": "v", "i": 3})),
    (Resource({"service.name": "x"}, "https://schema/r"), InstrumentationScope("")),
    (Resource({}), SCOPE),
]
NOW = 1_700_000_000_123_456_789


def sdk_bytes(families: list[ExportSeries], resource: Resource, scope: InstrumentationScope,
              now_ns: int, delta: bool = False) -> bytes:
    return encode_metrics(to_metrics_data(families, resource, scope, now_ns, delta)
                          ).SerializeToString()


def encoder_for(resource: Resource, scope: InstrumentationScope,
                delta: bool = False) -> MetricsEncoder:
    return MetricsEncoder(*sdk_header(resource, scope), delta=delta)


@pytest.fixture(scope="module")
def families() -> list[ExportSeries]:
    """Every catalogue metric's recorded series after reference workflows with errors,
    safety blocks, failures and refreshes, as an export reads them."""
    aggregator = Aggregator()
    aggregator.connect()
    try:
        ReferenceOrchestrator(seed=4, error_probability=0.4, safety_block_probability=0.4,
                              context_tokens_per_step=4000).run(workflows=30)
    finally:
        aggregator.disconnect()
    return ExportPoints().prepare(aggregator.copy_series(), NOW)


@pytest.mark.parametrize(("resource", "scope"), HEADERS)
def test_reference_families_encode_as_the_sdk_encodes_them(
        families: list[ExportSeries], resource: Resource, scope: InstrumentationScope) -> None:
    encoder = encoder_for(resource, scope)
    assert sum(bool(f.labels) for f in families) > 10
    for now_ns in (NOW, NOW + 10_000_000_000, 1):  # again: from the caches
        payload, points = encoder.encode(families, now_ns)
        assert payload == sdk_bytes(families, resource, scope, now_ns)
        assert points == sum(len(f.labels) for f in families)


def test_no_series_is_a_request_without_metrics() -> None:
    empty = [ExportSeries(MetricSpec("yolo.x", Kind.COUNTER, "1", "x"), [], [], [])]
    for resource, scope in HEADERS:
        assert encoder_for(resource, scope).encode(empty, NOW) == (
            sdk_bytes(empty, resource, scope, NOW), 0)


_TEXT = st.text(max_size=6)
_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-(2**53), 2**53), st.just(-0.0))
_CREATED = st.one_of(st.just(0.0), st.floats(0, 4e9, allow_nan=False))
_START = st.one_of(st.just(0), st.integers(1, 2**63 - 1))


def _exemplars(buckets: int) -> st.SearchStrategy:
    """Per bucket, None or (value, epoch seconds, trace id, span id)."""
    exemplar = st.tuples(st.floats(allow_nan=False), st.one_of(st.just(0.0), _CREATED),
                         st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1))
    return st.tuples(*[st.none() | exemplar for _ in range(buckets)])


@st.composite
def _family(draw: st.DrawFn) -> ExportSeries:
    kind = draw(st.sampled_from(list(Kind)))
    labels = tuple(draw(st.lists(st.text(min_size=1, max_size=5), max_size=3, unique=True)))
    buckets = tuple(sorted(draw(st.lists(st.floats(0, 1e6), max_size=4, unique=True))))
    unit = draw(st.one_of(_TEXT, st.just("{item}")))  # a counter of things: ints
    spec = MetricSpec(draw(st.text(min_size=1, max_size=8)), kind, unit, draw(_TEXT),
                      labels, buckets if kind is Kind.HISTOGRAM else ())
    histogram = kind is Kind.HISTOGRAM
    series = ExportSeries(spec, [], [], [], [] if histogram else None, [] if histogram else None)
    for _ in range(draw(st.integers(0, 4))):
        values = tuple(draw(_TEXT) for _ in range(draw(st.sampled_from(
            [len(labels), max(len(labels) - 1, 0)]))))  # a short label tuple: zip truncates
        if kind is Kind.HISTOGRAM:
            counts = tuple(draw(st.lists(st.one_of(st.just(0), st.integers(0, 2**40)),
                                         min_size=len(buckets) + 1,
                                         max_size=len(buckets) + 1)))
            value: Any = (*counts, draw(_NUMBER))
            series.extremes.append(draw(st.none() | st.tuples(_NUMBER, _NUMBER)))
            series.exemplars.append(draw(st.none() | _exemplars(len(counts))))
        else:
            value = draw(_NUMBER)
        series.labels.append(values)
        series.values.append(value)
        series.starts.append(draw(_START))
    return series


@settings(max_examples=150, deadline=None)
@given(st.lists(_family(), max_size=5), st.sampled_from(HEADERS),
       st.sampled_from([NOW, 0, 1]), st.booleans())
def test_any_families_encode_as_the_sdk_encodes_them(
        families: list[ExportSeries], header: tuple[Resource, InstrumentationScope],
        now_ns: int, delta: bool) -> None:
    """Cumulative or delta, counts as ints (when whole) or doubles, any start time."""
    resource, scope = header
    assert encoder_for(resource, scope, delta).encode(families, now_ns)[0] == sdk_bytes(
        families, resource, scope, now_ns, delta)


def test_zero_times_counts_and_values_are_left_out_as_the_sdk_leaves_them_out() -> None:
    histogram = MetricSpec("yolo.h", Kind.HISTOGRAM, "s", "h", ("a",), (0.5, 1.0))
    counter = MetricSpec("yolo.c", Kind.COUNTER, "", "", ("a",))
    families = [
        ExportSeries(histogram, [("x",), ("w",), ("y",)],
                     [(0, 0, 0, 0.0), (1, 0, 0, 0.2), (1, 0, 2, -0.0)],
                     [3_000_000_000, 0, 5_500_000_000], [None] * 3, [None] * 3),
        ExportSeries(counter, [("",), ("é",)], [0.0, -0.0], [0, 2_000_000_000]),
    ]
    for now_ns in (NOW, 0):
        for resource, scope in HEADERS:
            assert encoder_for(resource, scope).encode(families, now_ns)[0] == sdk_bytes(
                families, resource, scope, now_ns)


def test_the_label_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_metric_encoding, "_CACHE_SIZE", 8)
    spec = MetricSpec("yolo.c", Kind.COUNTER, "1", "c", ("agent",))
    encoder = encoder_for(*HEADERS[0])
    for round_ in range(5):
        family = ExportSeries(spec, [(f"a{round_}-{n}",) for n in range(5)],
                              [float(n) for n in range(5)], [1_000_000_000] * 5)
        assert encoder.encode([family], NOW)[0] == sdk_bytes([family], *HEADERS[0], NOW)
    assert len(encoder._codecs[spec].attributes) <= 8


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector("/v1/metrics")
    yield server
    server.close()


def sent_at(body: bytes) -> int:
    """The time of the data points of a request (the same for all of them)."""
    metric = ExportMetricsServiceRequest.FromString(body).resource_metrics[0] \
        .scope_metrics[0].metrics[0]
    return getattr(metric, metric.WhichOneof("data")).data_points[0].time_unix_nano


def test_http_exporter_sends_the_encoding(collector: Collector,
                                          families: list[ExportSeries]) -> None:
    resource, scope = HEADERS[1]
    exporter = FastHttpMetricExporter(resource, scope, endpoint=collector.url, timeout=5)
    # the fast path is taken wherever the SDK has the HTTP client it needs (1.45.1 on);
    # on the floor (1.44) the SDK's export sends the same bytes
    assert exporter.fast is http_client_available()
    try:
        before = time.time_ns()
        assert exporter.export_series(families) is MetricExportResult.SUCCESS
        exporter._max_export_batch_size = 10_000  # splitting: the SDK's own export
        assert exporter.export_series(families) is MetricExportResult.SUCCESS
        collector.status = 400
        assert exporter.export_series(families) is MetricExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert len(collector.bodies) == 3
    fast, sdk = collector.bodies[:2]
    assert sent_at(fast) >= before
    assert fast == sdk_bytes(families, resource, scope, sent_at(fast))
    assert ExportMetricsServiceRequest.FromString(sdk) == encode_metrics(
        to_metrics_data(families, resource, scope, sent_at(sdk)))


def test_http_exporter_without_the_plain_transport_sends_through_the_sdks_own(
        collector: Collector, families: list[ExportSeries],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An SDK before 1.45: no pluggable transports."""
    import sys

    try:
        from exporters.otlp.fastpath.span_transport import PlainHTTPTransport
    except ImportError:  # an SDK before 1.45.1 (the floor): no plain transport at all
        PlainHTTPTransport = ()  # type: ignore[assignment,misc]

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.http.transport._base", None)
    monkeypatch.delitem(sys.modules, "exporters.otlp.fastpath.span_transport", raising=False)
    exporter = FastHttpMetricExporter(*HEADERS[0], endpoint=collector.url, timeout=5)
    try:
        assert "exporters.otlp.fastpath.span_transport" not in sys.modules  # the import failed
        client = getattr(exporter, "_client", None)  # none before SDK 1.45.1
        assert not isinstance(getattr(client, "_transport", None), PlainHTTPTransport)
        assert exporter.export_series(families) is MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert len(collector.bodies) == 1
    assert collector.bodies[0] == sdk_bytes(families, *HEADERS[0], sent_at(collector.bodies[0]))


@pytest.mark.skipif(not http_client_available(),
                    reason="max_request_size came with SDK 1.45.1's HTTP client")
def test_http_exporter_refuses_a_request_over_its_size_limit(
        collector: Collector, families: list[ExportSeries]) -> None:
    exporter = FastHttpMetricExporter(*HEADERS[0], endpoint=collector.url, timeout=5,
                                      max_request_size=100)
    try:
        assert exporter.export_series(families) is MetricExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert collector.bodies == []


def test_grpc_exporter_builds_the_sdks_request(families: list[ExportSeries]) -> None:
    resource, scope = HEADERS[1]
    exporter = FastGrpcMetricExporter(resource, scope, endpoint="http://127.0.0.1:1",
                                      insecure=True)
    try:
        encoded = exporter.encode(families, NOW)
        assert exporter._translate_data(encoded) == encode_metrics(
            to_metrics_data(families, resource, scope, NOW))
        assert exporter._count_data(encoded) == sum(len(f.labels) for f in families)
        sdk_data = to_metrics_data(families, resource, scope, NOW)
        assert exporter._translate_data(sdk_data) == encode_metrics(sdk_data)
    finally:
        exporter.shutdown()


def test_otlp_exporter_makes_the_encoding_exporters(aggregator: Aggregator) -> None:
    for protocol, cls in (("http/protobuf", FastHttpMetricExporter),
                          ("grpc", FastGrpcMetricExporter)):
        config = load_config({"exporters": {"otlp": {"enabled": True, "protocol": protocol,
                                                     "interval_s": 3600, "traces": False,
                                                     "endpoint": "http://127.0.0.1:1"}}},
                             environ={})
        exporter = OtlpExporter(config.exporters.otlp, aggregator, config)
        exporter.start()
        try:
            assert type(exporter._metric_exporter) is cls
        finally:
            exporter.stop(0.5)
