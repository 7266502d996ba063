"""OTLP partial success: an accepted export in which the collector rejected some
data points or spans.

The OTLP specification lets a collector answer success while refusing part of a
request (``partial_success``: ``rejected_data_points`` or ``rejected_spans``, and an
``error_message``). The SDK's exporters discard the answer, so :class:`PartialSuccess`
reads it where this package can see it: the plain HTTP transport
(:class:`~exporters.otlp.fastpath.span_transport.PlainHTTPTransport`) hands every
2xx answer's body to :meth:`PartialSuccess.answer`; the SDK's own transport (HTTPS,
proxies, netrc) is wrapped (:func:`watch_http_answers`) to do the same; and over gRPC
the exporter's stub is wrapped (:func:`watch_grpc_answers`) so that each ``Export``
call's response goes to :meth:`PartialSuccess.answer_response`. The rejected items are
counted in ``yolo_telemetry_dropped_total`` (``reason="rejected"``; component
``tracer`` for spans, ``otlp`` for metric points), the first report and every new
message are logged once, and the totals show in the exporter's ``/health`` check.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

log = logging.getLogger("telemetry.exporters.otlp")

#: Distinct collector messages logged per exporter part; later new ones are counted only.
_MESSAGES_LOGGED = 8


class _AnswerReadingTransport:
    """The SDK's HTTP transport, handing every 2xx answer's body to ``on_answer``."""

    def __init__(self, inner: Any, on_answer: Callable[[bytes], None]) -> None:
        self.inner = inner
        self._on_answer = on_answer

    def request(self, *args: Any, **kwargs: Any) -> Any:
        result = self.inner.request(*args, **kwargs)
        status = getattr(result, "status_code", None)
        if type(status) is int and 200 <= status < 300:
            with contextlib.suppress(Exception):  # an unreadable answer says nothing
                self._on_answer(result.content())
        return result

    def close(self) -> None:
        self.inner.close()

    def is_connection_error(self, exception: Exception | None) -> bool:
        return self.inner.is_connection_error(exception)


def watch_http_answers(exporter: Any, on_answer: Callable[[bytes], None]) -> bool:
    """Have an SDK OTLP/HTTP exporter's own transport (its ``_client._transport``)
    report each accepted export's answer; on an SDK before 1.45.1, which has no such
    client, its ``_export`` (which returns the ``requests`` response). False when it
    has neither."""
    client = getattr(exporter, "_client", None)
    inner = getattr(client, "_transport", None)
    if inner is None or not callable(getattr(inner, "request", None)):
        return _watch_sdk_export(exporter, on_answer)
    if not isinstance(inner, _AnswerReadingTransport):
        client._transport = _AnswerReadingTransport(inner, on_answer)  # type: ignore[union-attr]
    return True


def _watch_sdk_export(exporter: Any, on_answer: Callable[[bytes], None]) -> bool:
    """SDK 1.44: wrap the exporter's ``_export(bytes, timeout)``, which every attempt
    of its ``export`` calls and which returns the ``requests`` response."""
    send = getattr(exporter, "_export", None)
    if not callable(send) or getattr(send, "reads_answers", False):
        return callable(send)

    def export_reading_answers(*args: Any, **kwargs: Any) -> Any:
        response = send(*args, **kwargs)
        if getattr(response, "ok", False):
            with contextlib.suppress(Exception):  # an unreadable answer says nothing
                on_answer(response.content)
        return response

    export_reading_answers.reads_answers = True  # type: ignore[attr-defined]
    exporter._export = export_reading_answers
    return True


class PartialSuccess:
    """What the collector rejected from accepted ``signal`` exports; thread-safe."""

    def __init__(self, signal: Literal["metrics", "traces"], aggregator: Any) -> None:
        self.signal = signal
        self.aggregator = aggregator
        self.component = "tracer" if signal == "traces" else "otlp"
        self.rejected = 0
        self.last_message: str | None = None
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def answer(self, body: bytes) -> None:
        """Read one accepted export's answer; never raises."""
        if not body:
            return
        try:
            rejected, message = self._parse(body)
        except Exception:  # not an OTLP answer (a proxy's page, JSON): nothing to say
            return
        self._record(rejected, message)

    def answer_response(self, response: Any) -> None:
        """Read one accepted gRPC export's response message; never raises."""
        try:
            partial = response.partial_success
            rejected = int(getattr(partial, "rejected_spans", 0)
                           or getattr(partial, "rejected_data_points", 0))
            message = str(partial.error_message)
        except Exception:  # not the response expected: nothing to say
            return
        self._record(rejected, message)

    def _record(self, rejected: int, message: str) -> None:
        if not rejected and not message:
            return
        with self._lock:
            self.rejected += rejected
            if message:
                self.last_message = message
            first = message not in self._logged and len(self._logged) < _MESSAGES_LOGGED
            if first:
                self._logged.add(message)
        if rejected:
            self.aggregator.count_dropped(self.component, "rejected", rejected)
        if first:
            log.warning("the OTLP collector rejected %d %s of an export: %s", rejected,
                        "spans" if self.signal == "traces" else "data points",
                        message or "(no message)")

    def _parse(self, body: bytes) -> tuple[int, str]:
        if self.signal == "traces":
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceResponse,
            )
            partial = ExportTraceServiceResponse.FromString(body).partial_success
            return int(partial.rejected_spans), partial.error_message
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceResponse,
        )
        partial = ExportMetricsServiceResponse.FromString(body).partial_success
        return int(partial.rejected_data_points), partial.error_message

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"rejected": self.rejected, "rejected_message": self.last_message}


class _AnsweringStub:
    """A gRPC service stub whose ``Export`` also hands each response on."""

    def __init__(self, stub: Any, on_response: Callable[[Any], None]) -> None:
        self._stub = stub
        self._on_response = on_response

    def Export(self, *args: Any, **kwargs: Any) -> Any:  # the gRPC method's name
        response = self._stub.Export(*args, **kwargs)
        self._on_response(response)
        return response


def watch_grpc_answers(exporter: Any, on_response: Callable[[Any], None]) -> bool:
    """Have an SDK gRPC exporter hand every export's response to ``on_response``.

    Uses the SDK exporter's private ``_stub`` (the stub class it makes its client
    from, again after a reconnection), ``_channel`` and ``_client`` (see the fast
    path's README); False, and answers are not read, when they are not there.
    """
    stub, channel = getattr(exporter, "_stub", None), getattr(exporter, "_channel", None)
    if not callable(stub) or channel is None or getattr(exporter, "_client", None) is None:
        log.debug("this OpenTelemetry SDK's gRPC exporter cannot report partial success")
        return False
    exporter._stub = lambda channel: _AnsweringStub(stub(channel), on_response)
    exporter._client = exporter._stub(channel)
    return True


def watch_answers(exporter: Any, partial: PartialSuccess) -> None:
    """Have the exporter's plain HTTP transport, its gRPC stub, or the SDK's HTTP
    transport, report the collector's answers to ``partial``."""
    transport = getattr(exporter, "plain_transport", None)
    if transport is not None:
        transport.on_answer = partial.answer
    elif getattr(exporter, "grpc", False):
        watch_grpc_answers(exporter, partial.answer_response)
    else:  # the SDK's own transport: HTTPS, a proxy or netrc for the endpoint
        watch_http_answers(exporter, partial.answer)
