"""HTTP/1.1 as the plain transport speaks it (exporters/otlp/fastpath/http1.py): the
request bytes it writes, and every way a collector may frame its answer, checked
through the transport against a loopback server that answers exactly the bytes a
test gives it."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

pytest.importorskip("opentelemetry.exporter.http.transport._base",
                    reason="an SDK before 1.45.1: no pluggable HTTP transport")

from exporters.otlp.fastpath.http1 import MAX_HEAD, AnswerError, request_head
from exporters.otlp.fastpath.span_transport import PlainHTTPTransport

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class ScriptedCollector:
    """Accepts connections and answers each request with the next scripted answer
    (bytes, and whether to close the connection after it); records every request's
    raw bytes and how many connections it accepted."""

    def __init__(self) -> None:
        self.answers: list[tuple[bytes, bool]] = []
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1/traces"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def answer(self, data: bytes, close: bool = False) -> None:
        self.answers.append((data, close))

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                self.connections += 1
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn, contextlib.suppress(OSError):
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                buffer = buffer[length:]
                data, close = self.answers.pop(0) if self.answers else (OK, False)
                conn.sendall(data)
                if close:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def collector() -> Iterator[ScriptedCollector]:
    server = ScriptedCollector()
    yield server
    server.close()


@pytest.fixture
def transport() -> Iterator[PlainHTTPTransport]:
    plain = PlainHTTPTransport()
    yield plain
    plain.close()


def post(transport: PlainHTTPTransport, collector: ScriptedCollector, data: bytes = b"spans",
         headers: dict[str, str] | None = None) -> object:
    return transport.request("POST", collector.url, headers=headers, data=data, timeout=5)


def test_the_request_is_the_head_the_length_and_the_body(
        transport: PlainHTTPTransport, collector: ScriptedCollector) -> None:
    headers = {"Content-Type": "application/x-protobuf", "x-team": " agents ",
               "Content-Length": "999", "Host": "elsewhere", "Connection": "close"}
    for body in (b"spans", b"more spans"):
        assert post(transport, collector, body, headers).status_code == 200
    port = collector.url.split(":")[2].split("/")[0]
    assert collector.requests == [
        (f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
         "Content-Type: application/x-protobuf\r\nx-team: agents\r\n"
         f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for body in (b"spans", b"more spans")]  # the caller's framing headers left out
    assert collector.connections == 1


@pytest.mark.parametrize("headers", [{"x-bad": "a\r\nInjected: 1"}, {"x bad": "a"},
                                     {"x-bad": "\x00"}, {"x-bad": "caf\u00e9\u20ac"}])
def test_a_header_that_cannot_be_sent_fails_the_request_and_sends_nothing(
        transport: PlainHTTPTransport, collector: ScriptedCollector,
        headers: dict[str, str]) -> None:
    result = post(transport, collector, headers=headers)
    assert result.status_code is None and isinstance(result.error, ValueError)
    assert not transport.is_connection_error(result.error)  # not retried: it would fail again
    assert collector.requests == []
    with pytest.raises(ValueError):
        request_head("POST", "/a b", "host", ())


def test_a_chunked_answer_is_read_whole_and_the_connection_kept(
        transport: PlainHTTPTransport, collector: ScriptedCollector) -> None:
    collector.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Seen: a\r\n\r\n"
                     b"5;ext=1\r\npart \r\nA\r\nof answer.\r\n0\r\nTrailer: t\r\n\r\n")
    result = post(transport, collector)
    assert result.status_code == 200 and result.content() == b"part of answer."
    assert result.headers()["x-seen"] == "a"
    assert post(transport, collector).status_code == 200
    assert collector.connections == 1


def test_interim_answers_are_skipped(transport: PlainHTTPTransport,
                                     collector: ScriptedCollector) -> None:
    collector.answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
                     b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")
    result = post(transport, collector)
    assert (result.status_code, result.reason, result.content()) == (202, "Accepted", b"ok")


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",  # framed by the close
    b"HTTP/1.1 200 OK\r\n\r\nuntil the end",  # no length: the close ends it too
    b"HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nuntil the end",  # 1.0: not kept alive
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: keep-alive, Close\r\n\r\n"
    b"until the end",
])
def test_an_answer_ending_the_connection_is_read_whole_and_the_next_request_reconnects(
        transport: PlainHTTPTransport, collector: ScriptedCollector, answer: bytes) -> None:
    collector.answer(answer, close=True)
    result = post(transport, collector)
    assert result.status_code == 200 and result.content() == b"until the end"
    assert post(transport, collector).status_code == 200
    assert collector.connections == 2


def test_an_answer_without_a_body_is_not_waited_for(transport: PlainHTTPTransport,
                                                    collector: ScriptedCollector) -> None:
    collector.answer(b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n")
    assert post(transport, collector).status_code == 204  # would block for 10 bytes
    assert post(transport, collector).status_code == 200
    assert collector.connections == 1


def test_retry_after_and_repeated_headers_reach_the_sdks_client(
        transport: PlainHTTPTransport, collector: ScriptedCollector) -> None:
    collector.answer(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After:  7 \r\nX-A: 1\r\n"
                     b"x-a: 2\r\nContent-Length: 5, 5\r\n\r\nbusy!")
    result = post(transport, collector)
    assert (result.status_code, result.reason, result.content()) == (
        503, "Service Unavailable", b"busy!")
    assert result.headers().get("retry-after") == "7"
    assert result.headers()["X-A"] == "1, 2"


@pytest.mark.parametrize("answer", [
    b"HTTP/2 200 OK\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    b"SMTP ready\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n folded: header\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
])
def test_a_malformed_answer_is_a_connection_error_and_drops_the_connection(
        transport: PlainHTTPTransport, collector: ScriptedCollector, answer: bytes) -> None:
    collector.answer(answer)
    result = post(transport, collector)
    assert result.status_code is None and isinstance(result.error, AnswerError)
    assert transport.is_connection_error(result.error)  # the SDK's client retries once
    assert post(transport, collector).status_code == 200
    assert collector.connections == 2


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    b"HTTP/1.1 200 OK\r\nContent-",
    b"",
])
def test_an_answer_cut_short_is_a_connection_error(
        transport: PlainHTTPTransport, collector: ScriptedCollector, answer: bytes) -> None:
    collector.answer(answer, close=True)
    result = post(transport, collector)
    assert isinstance(result.error, ConnectionError)
    assert transport.is_connection_error(result.error)
    assert post(transport, collector).status_code == 200


def test_heads_and_bodies_over_the_limits_are_errors(
        transport: PlainHTTPTransport, collector: ScriptedCollector,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from exporters.otlp.fastpath import span_transport

    monkeypatch.setattr(span_transport, "_MAX_ANSWER_BODY", 8)
    collector.answer(b"HTTP/1.1 200 OK\r\nX-Long: " + b"x" * MAX_HEAD + b"\r\n\r\n")
    collector.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\n12345\r\n5\r\n12345\r\n0\r\n\r\n")
    collector.answer(b"HTTP/1.1 200 OK\r\n\r\n123456789", close=True)
    for _ in range(3):
        assert isinstance(post(transport, collector).error, AnswerError)
    collector.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"8\r\n12345678\r\n0\r\n\r\n")
    assert post(transport, collector).content() == b"12345678"


def test_bytes_after_the_answer_make_the_next_request_reconnect(
        transport: PlainHTTPTransport, collector: ScriptedCollector) -> None:
    collector.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n")
    assert post(transport, collector).content() == b"ok"
    assert post(transport, collector).status_code == 200
    assert collector.connections == 2
