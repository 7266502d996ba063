"""The SDK internals the OTLP/HTTP fast path uses from opentelemetry-exporter-otlp
1.45.1 on (test_pinned_internals.py has the rest and says why these are pinned): the
pluggable transport's base classes and the exporters' HTTP client. On the otlp
extra's floor (1.44) these are absent and the fast path falls back to the SDK's own
export (exporters/otlp/fastpath/sdk_path.py); test_pinned_internals.py checks what
that fallback uses there, and .ci/otlp_sdk_floor.sh runs it.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

pytest.importorskip("opentelemetry.exporter.http.transport._base",
                    reason="an SDK before 1.45.1: no pluggable HTTP transport")

from opentelemetry.exporter.http.transport._base import (
    BaseHTTPResult,
    BaseHTTPTransport,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Answer(BaseHTTPResult):
    """Built as exporters/otlp/fastpath/span_transport.PlainHTTPResult is."""

    body: bytes = b""

    def content(self) -> bytes:
        return self.body

    def headers(self) -> dict[str, str]:
        return {}


class Recorder(BaseHTTPTransport):
    """A transport answering every request with one status, keeping what it was sent."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.sent: list[tuple[str, str, bytes | None]] = []

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                timeout: float | None = None, data: bytes | None = None) -> BaseHTTPResult:
        self.sent.append((method, url, data))
        return Answer(status_code=self.status, reason="R", body=b"")

    def close(self) -> None:
        pass

    def is_connection_error(self, exception: Exception | None) -> bool:
        return False


def test_base_http_transport_and_result_have_the_shape_the_plain_transport_implements():
    assert BaseHTTPTransport.__abstractmethods__ == {"request", "close", "is_connection_error"}
    request = inspect.signature(BaseHTTPTransport.request).parameters
    assert list(request) == ["self", "method", "url", "headers", "timeout", "data"]
    assert all(request[name].kind is inspect.Parameter.KEYWORD_ONLY
               for name in ("headers", "timeout", "data"))
    assert BaseHTTPResult.__abstractmethods__ == {"content", "headers"}
    assert [field.name for field in dataclasses.fields(BaseHTTPResult)] == [
        "status_code", "reason", "error"]
    assert BaseHTTPResult.__dataclass_params__.frozen
    assert "__slots__" in BaseHTTPResult.__dict__
    failed = Answer(error=OSError("refused"))
    assert failed.status_code is None and isinstance(failed.error, OSError)


@pytest.mark.parametrize("exporter_class, path", [(HttpSpanExporter, "/v1/traces"),
                                                  (HttpMetricExporter, "/v1/metrics")])
def test_http_exporters_send_bytes_through_client_export_and_the_given_transport(
        exporter_class, path):
    transport = Recorder(200)
    exporter = exporter_class(endpoint=f"http://127.0.0.1:9{path}", _transport=transport)
    try:
        assert isinstance(exporter._max_request_size, int) and exporter._max_request_size > 0
        assert exporter._shutdown is False
        sent = exporter._client.export(b"payload")
        assert sent.success is True and sent.status_code == 200 and sent.error is None
        ((method, url, data),) = transport.sent
        assert (method, url) == ("POST", f"http://127.0.0.1:9{path}")
        assert data == b"payload"  # no compression configured: the bytes as given

        transport.status = 400  # not retried: one request, a failure with its status
        refused = exporter._client.export(b"payload")
        assert refused.success is False and refused.status_code == 400
        assert len(transport.sent) == 2
    finally:
        exporter.shutdown()


def test_http_metric_exporter_records_an_operation_and_its_error():
    exporter = HttpMetricExporter(endpoint="http://127.0.0.1:9/v1/metrics",
                                  _transport=Recorder(200))
    try:
        assert exporter._max_export_batch_size is None
        with exporter._metrics.export_operation(3) as result:
            result.error = RuntimeError("too large")
            result.error_attrs = {"http.response.status_code": 413}
    finally:
        exporter.shutdown()
