"""The OTLP/gRPC metric exporter sending the aggregator's series encoded by
:class:`~exporters.otlp.fastpath.metric_encoding.MetricsEncoder`.

:class:`FastGrpcMetricExporter` is the SDK's gRPC ``OTLPMetricExporter`` (same
channel, retries, headers, TLS, its own metrics) with one more method,
:meth:`~FastGrpcMetricExporter.export_series`: the request is parsed from the
encoder's bytes (in C by protobuf, cheap) instead of built by the SDK's encoder from
SDK data objects, and sent through the SDK's retrying ``_export``. With
``max_export_batch_size`` set, the series go through the SDK's ``export``.

Imports gRPC: import it only when sending metrics over gRPC.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.metrics.export import MetricExportResult

from exporters.otlp.metrics import EncodedMetrics, SeriesExport
from exporters.otlp.points import ExportSeries


class FastGrpcMetricExporter(GrpcMetricExporter, SeriesExport):
    """``OTLPMetricExporter`` (gRPC) whose request is parsed from
    :class:`MetricsEncoder`'s bytes."""

    #: Its stub can be wrapped to read partial success (:mod:`exporters.otlp.partial`).
    grpc = True

    def __init__(self, resource: Any, scope: Any, delta: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setup_encoding(resource, scope, delta)

    def export_series(self, series: Iterable[ExportSeries], timeout_millis: float = 10_000,
                        now_ns: int | None = None) -> MetricExportResult:
        now_ns = time.time_ns() if now_ns is None else now_ns
        if self._max_export_batch_size is not None:
            return self.export(self.sdk_data(series, now_ns), timeout_millis)
        return self._export(self.encode(series, now_ns))

    def _translate_data(self, data: Any) -> ExportMetricsServiceRequest:
        """The request for a batch (asked again on each retry)."""
        if isinstance(data, EncodedMetrics):
            return ExportMetricsServiceRequest.FromString(data.payload)
        return super()._translate_data(data)

    def _count_data(self, data: Any) -> int:
        if isinstance(data, EncodedMetrics):
            return data.points
        return super()._count_data(data)
