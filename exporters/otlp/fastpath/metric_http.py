"""The OTLP/HTTP metric exporter sending the aggregator's series encoded by
:class:`~exporters.otlp.fastpath.metric_encoding.MetricsEncoder`.

:class:`FastHttpMetricExporter` is the SDK's ``OTLPMetricExporter`` (same endpoint,
headers, TLS, compression, timeouts, retries, environment variables, its own
metrics) with one more method, :meth:`~FastHttpMetricExporter.export_series`,
which the OTLP exporter calls each interval with one :meth:`Aggregator.copy_series`. It
hands the encoded bytes to the SDK's HTTP client, as the SDK's own ``export`` does
with the bytes of its encoder. For a plain ``http://`` endpoint the client sends
through :class:`~exporters.otlp.fastpath.span_transport.PlainHTTPTransport` instead of
``requests`` (see that module for when, and why).

With an SDK whose internals differ (no such HTTP client), or with
``max_export_batch_size`` set, the series go through
:func:`~exporters.otlp.metrics.to_metrics_data` and the SDK's ``export`` instead:
slower, same request. ``tests/unit/exporters/otlp/test_metric_encoding.py`` fails if the fast path
is not taken with the installed SDK.

Imports the OTLP HTTP exporter: import it only when sending metrics over HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.sdk.metrics.export import MetricExportResult

from exporters.otlp.fastpath.plain_http import init_with_plain_transport
from exporters.otlp.metrics import SeriesExport
from exporters.otlp.points import ExportSeries

log = logging.getLogger("telemetry.exporters.otlp")

#: The semantic-conventions attribute the SDK's own export records a status under.
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"


class RequestPayloadTooLargeError(Exception):
    """An encoded request over ``max_request_size`` (the SDK's error of that name is
    internal to it); recorded, as the SDK does, in the exporter's own metrics."""


class FastHttpMetricExporter(HttpMetricExporter, SeriesExport):
    """``OTLPMetricExporter`` (HTTP) sending :class:`MetricsEncoder`'s bytes."""

    def __init__(self, resource: Any, scope: Any, delta: bool = False, **kwargs: Any) -> None:
        #: The plain transport (None: the SDK's own), which can report answers.
        self.plain_transport = init_with_plain_transport(super().__init__, kwargs, "metrics")
        self.setup_encoding(resource, scope, delta)
        client = getattr(self, "_client", None)
        #: The SDK's HTTP client takes serialized bytes, its exporter metrics and its
        #: request size limit exist (as in SDK 1.45).
        self.fast = (callable(getattr(client, "export", None))
                     and hasattr(getattr(self, "_metrics", None), "export_operation")
                     and isinstance(getattr(self, "_max_request_size", None), int))

    def export_series(self, series: Iterable[ExportSeries], timeout_millis: float = 10_000,
                        now_ns: int | None = None) -> MetricExportResult:
        """Encode and send one collection; the SDK's ``export`` when the fast path
        is not available."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        if not self.fast or self._max_export_batch_size is not None:
            return self.export(self.sdk_data(series, now_ns), timeout_millis)
        if self._shutdown:
            log.warning("metric exporter already shut down, ignoring a batch")
            return MetricExportResult.FAILURE
        encoded = self.encode(series, now_ns)
        with self._metrics.export_operation(encoded.points) as result:
            limit = self._max_request_size
            if 0 < limit < len(encoded.payload):
                log.warning("dropping a metric batch of %d bytes: over max_request_size (%d)",
                            len(encoded.payload), limit)
                result.error = RequestPayloadTooLargeError(
                    f"metric request of {len(encoded.payload)} bytes exceeds "
                    f"max_request_size {limit}")
                return MetricExportResult.FAILURE
            sent = self._client.export(encoded.payload)
            if not sent.success:  # as the SDK's own export records it
                result.error = sent.error
                if sent.status_code is not None:
                    result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS
