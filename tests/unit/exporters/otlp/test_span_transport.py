"""The plain HTTP transport of the span exporter: when it is used, and that it sends,
reports and recovers as the SDK's client expects."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

# the plain transport is built on the SDK's pluggable transport, from 1.45.1 on; on
# the floor (1.44) the exporters keep the SDK's own (test_metric_encoding.py checks that)
pytest.importorskip("opentelemetry.exporter.http.transport._base",
                    reason="an SDK before 1.45.1: no pluggable HTTP transport")

from exporters.otlp.fastpath.span_http import FastHttpSpanExporter
from exporters.otlp.fastpath.span_transport import (
    PlainHTTPTransport,
    plain_transport_for,
)
from telemetry.tracing.spans.record import Origin
from tests.unit.exporters.otlp.test_span_encoding import RESOURCE, sdk_bytes

ORIGIN = Origin(RESOURCE, InstrumentationScope("s", "1"), None)
SPANS = [(ORIGIN, f"span {n}", 1, n + 1, None, None, 1, 2, {"n": n}, None, 0, None, 1)
         for n in range(3)]


class Collector:
    """An HTTP/1.1 endpoint (kept-alive connections) answering ``statuses`` in turn,
    then 200; it records bodies, headers and how many connections it accepted."""

    def __init__(self, port: int = 0) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []
        #: Headers and body of every answer, beside its status and Content-Length.
        self.answer_headers: list[tuple[str, str]] = []
        self.answer = b""
        self.connections = 0
        self.sockets: list[socket.socket] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                collector.connections += 1
                collector.sockets.append(self.request)
                super().setup()

            def do_POST(self) -> None:
                collector.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                collector.headers.append(dict(self.headers))
                status = collector.statuses.pop(0) if collector.statuses else 200
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                for name, value in collector.answer_headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(collector.answer)))
                self.end_headers()
                self.wfile.write(collector.answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop, dropping open connections too, as a collector that exits does."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    yield server
    server.close()


def test_plain_http_endpoints_skip_requests(tmp_path: Path) -> None:
    url = "http://127.0.0.1:4318/v1/traces"
    assert isinstance(plain_transport_for(url, {}), PlainHTTPTransport)
    assert plain_transport_for("https://collector:4318/v1/traces", {}) is None
    assert plain_transport_for(None, {}) is None
    provider = {"OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER": "vault"}
    assert plain_transport_for(url, provider) is None


def test_proxies_and_netrc_keep_the_requests_transport(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://collector.example:4318/v1/traces"
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert plain_transport_for(url) is None
    monkeypatch.setenv("NO_PROXY", "collector.example")
    assert isinstance(plain_transport_for(url), PlainHTTPTransport)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine collector.example login user password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert plain_transport_for(url) is None


def test_the_exporter_sends_through_it(collector: Collector) -> None:
    exporter = FastHttpSpanExporter(endpoint=collector.url, timeout=5,
                                    headers={"x-team": "agents"})
    assert isinstance(exporter._client._transport, PlainHTTPTransport)
    try:
        for _ in range(3):
            assert exporter.export_records(SPANS) is SpanExportResult.SUCCESS
        collector.statuses = [400]
        assert exporter.export_records(SPANS) is SpanExportResult.FAILURE
        collector.statuses = [503]  # retried (Retry-After: 0), then accepted
        assert exporter.export_records(SPANS) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert collector.bodies == [sdk_bytes(SPANS)] * 6
    headers = {key.lower(): value for key, value in collector.headers[0].items()}
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-team"] == "agents"
    assert headers["user-agent"].startswith("OTel-OTLP-Exporter-Python/")
    assert collector.connections == 1  # one kept-alive connection for every request


def test_compressed_batches_say_so(collector: Collector) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression

    exporter = FastHttpSpanExporter(endpoint=collector.url, timeout=5,
                                    compression=Compression.Gzip)
    try:
        assert exporter.export_records(SPANS) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    headers = {key.lower(): value for key, value in collector.headers[0].items()}
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(collector.bodies[0]) == sdk_bytes(SPANS)


def test_answers_are_read_whole_and_a_closing_collector_gets_a_new_connection(
        collector: Collector) -> None:
    collector.answer = b"partial success" * 10
    collector.answer_headers = [("Connection", "close"), ("X-Seen", "a"), ("x-seen", "b")]
    transport = PlainHTTPTransport()
    try:
        for _ in range(2):
            result = transport.request("POST", collector.url, data=b"spans", timeout=5)
            assert result.status_code == 200 and result.reason == "OK"
            assert result.content() == collector.answer
            headers = result.headers()
            assert headers.get("X-SEEN") == headers["x-seen"] == "a, b"
            assert "Connection" in headers and headers.get("retry-after") is None
    finally:
        transport.close()
    assert collector.bodies == [b"spans"] * 2
    assert collector.connections == 2  # the collector said it closes: not reused


def test_an_answer_body_over_the_limit_is_an_error_and_drops_the_connection(
        collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    from exporters.otlp.fastpath import span_transport as otlp_span_transport

    monkeypatch.setattr(otlp_span_transport, "_MAX_ANSWER_BODY", 100)
    collector.answer = b"x" * 101
    transport = PlainHTTPTransport()
    try:
        result = transport.request("POST", collector.url, data=b"spans", timeout=5)
        assert result.error is not None and transport.is_connection_error(result.error)
        collector.answer = b"x" * 100
        result = transport.request("POST", collector.url, data=b"spans", timeout=5)
        assert result.status_code == 200 and result.content() == collector.answer
    finally:
        transport.close()
    assert collector.connections == 2


def test_a_request_after_close_fails_at_once(collector: Collector) -> None:
    """Closing is the exporter shutting down: the SDK client's immediate retry of the
    request close interrupted must not open a new connection (to a collector that may
    be hung, for the whole timeout again)."""
    transport = PlainHTTPTransport()
    try:
        assert transport.request("POST", collector.url, data=b"1", timeout=5).status_code == 200
        transport.close()
        result = transport.request("POST", collector.url, data=b"2", timeout=5)
        assert result.status_code is None and isinstance(result.error, ConnectionAbortedError)
    finally:
        transport.close()
    assert collector.bodies == [b"1"] and collector.connections == 1


def test_close_interrupts_a_request_to_a_hung_collector_and_its_retry() -> None:
    """A collector that accepts and never answers: close from another thread ends the
    SDK client's export at once, retry included (before, the retry reconnected and
    waited out the whole timeout)."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # the kernel accepts; nobody ever reads or answers
        exporter = FastHttpSpanExporter(
            endpoint=f"http://127.0.0.1:{hung.getsockname()[1]}/v1/traces", timeout=10)
        assert exporter.fast
        outcome: list[Any] = []
        sending = threading.Thread(target=lambda: outcome.append(exporter._client.export(b"x")))
        sending.start()
        deadline = time.monotonic() + 5
        while exporter._client._transport._sock is None:  # connected, waiting for the answer
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        exporter.shutdown()
        sending.join(5)
        assert not sending.is_alive()
        assert time.monotonic() - started < 1.0
    assert outcome and not outcome[0].success


def test_a_dead_endpoint_is_a_connection_error() -> None:
    transport = PlainHTTPTransport()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v1/traces"
    result = transport.request("POST", closed, data=b"x", timeout=2)
    assert result.status_code is None and transport.is_connection_error(result.error)


def test_a_restarted_collector_gets_a_new_connection(collector: Collector) -> None:
    """The kept-alive connection dies with the collector; the next export reconnects
    (the SDK's client retries a connection error at once)."""
    exporter = FastHttpSpanExporter(endpoint=collector.url, timeout=5)
    port = collector.server.server_address[1]
    try:
        assert exporter.export_records(SPANS) is SpanExportResult.SUCCESS
        collector.close()
        restarted = Collector(port)
        try:
            assert exporter.export_records(SPANS) is SpanExportResult.SUCCESS
            assert restarted.bodies == [sdk_bytes(SPANS)]
        finally:
            restarted.close()
    finally:
        exporter.shutdown()


def test_close_interrupts_a_request_a_hung_collector_holds() -> None:
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen()  # accepts (the kernel does), never answers
        transport = PlainHTTPTransport()
        results: list[Any] = []
        worker = threading.Thread(target=lambda: results.append(transport.request(
            "POST", f"http://127.0.0.1:{hung.getsockname()[1]}/v1/traces", data=b"x",
            timeout=30)))
        started = time.monotonic()
        worker.start()
        deadline = time.monotonic() + 10
        while transport._sock is None:
            assert time.monotonic() < deadline, "the request never connected"
            time.sleep(0.01)  # polling for the connection, with a deadline
        transport.close()
        worker.join(10)
        assert not worker.is_alive() and time.monotonic() - started < 10
        assert results[0].error is not None and transport.is_connection_error(results[0].error)


def test_an_sdk_without_pluggable_transports_keeps_its_own(
        collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before opentelemetry-exporter-otlp-proto-http 1.45 the transport interface the
    plain transport builds on does not exist: the exporter still works, through the
    SDK's own transport."""
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.http.transport._base", None)
    monkeypatch.delitem(sys.modules, "exporters.otlp.fastpath.span_transport")
    exporter = FastHttpSpanExporter(endpoint=collector.url, timeout=5)
    try:
        assert "exporters.otlp.fastpath.span_transport" not in sys.modules  # the import failed
        assert not isinstance(getattr(exporter._client, "_transport", None), PlainHTTPTransport)
        assert exporter.export_records(SPANS) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert collector.bodies == [sdk_bytes(SPANS)]
