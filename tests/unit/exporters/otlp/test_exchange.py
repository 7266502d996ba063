"""A request sent and its answer's first bytes read with one release of the GIL
(exporters/otlp/fastpath/exchange.pyx, compiled builds only): whole sends past the
socket's buffers, the answer as far as it arrived, the deadline, a peer that closes,
a closed descriptor. A pure-Python build has no such module and sends with
``sendall``; the transport's own tests (test_http1.py, test_span_transport.py) run
both ways."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from exporters.otlp.fastpath.http1 import read_answer
from telemetry.compiled import is_compiled

COMPILED = is_compiled("exporters.otlp.fastpath.exchange")


@pytest.fixture
def exchange() -> Callable[..., tuple[int, bytes]] | None:
    """The compiled exchange, or None in a pure-Python build (the test has nothing
    else to check then)."""
    if not COMPILED:
        return None
    from exporters.otlp.fastpath.exchange import exchange as compiled

    return compiled


def test_the_plain_transport_exchanges_through_it_when_compiled(exchange) -> None:
    pytest.importorskip("opentelemetry.exporter.http.transport._base",
                        reason="an SDK before 1.45.1: no pluggable HTTP transport")
    from exporters.otlp.fastpath import span_transport

    assert span_transport.exchange is exchange  # None in a pure-Python build


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield ours, theirs


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(65536, size - len(data)))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def test_a_request_larger_than_the_socket_buffers_goes_out_whole(exchange, pair) -> None:
    if exchange is None:
        return
    ours, theirs = pair
    head, body = b"POST / HTTP/1.1\r\nContent-Length: 8388608\r\n\r\n", bytes(range(256)) * 32768
    received: list[bytes] = []

    def collector() -> None:  # reads it all, then answers
        received.append(read_exactly(theirs, len(head) + len(body)))
        theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    thread = threading.Thread(target=collector)
    thread.start()
    error, data = exchange(ours.fileno(), head, body, 30.0)
    thread.join()
    assert error == 0
    assert received == [head + body]
    assert data == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_an_answer_that_arrives_in_parts_is_read_whole_from_what_came_first(
        exchange, pair) -> None:
    """exchange returns what had arrived; read_answer takes it and reads the rest."""
    ours, theirs = pair
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    theirs.sendall(answer[12:])  # the rest is in the socket already
    parsed = read_answer(ours, "POST", 1 << 20, answer[:12])
    assert (parsed.status, parsed.body, parsed.keep_alive) == (200, b"hello", True)
    if exchange is None:
        return
    theirs.sendall(answer[:20])
    error, data = exchange(ours.fileno(), b"GET / HTTP/1.1\r\n\r\n", b"", 5.0)
    assert error == 0 and answer[:20].startswith(data) and data
    theirs.sendall(answer[20:])
    rest = read_answer(ours, "POST", 1 << 20, data + read_exactly(ours, 20 - len(data)))
    assert rest.body == b"hello"


def test_no_answer_before_the_deadline_is_a_timeout(exchange, pair) -> None:
    if exchange is None:
        return
    ours, theirs = pair
    started = time.monotonic()
    error, data = exchange(ours.fileno(), b"POST / HTTP/1.1\r\n\r\n", b"x", 0.2)
    assert (error, data) == (errno.ETIMEDOUT, b"")
    assert 0.2 <= time.monotonic() - started < 5.0
    assert read_exactly(theirs, 20) == b"POST / HTTP/1.1\r\n\r\nx"  # it was sent


def test_a_peer_that_closes_without_answering_gives_nothing(exchange, pair) -> None:
    if exchange is None:
        return
    ours, theirs = pair
    theirs.shutdown(socket.SHUT_WR)
    assert exchange(ours.fileno(), b"POST / HTTP/1.1\r\n\r\n", b"", 5.0) == (0, b"")


def test_a_closed_descriptor_is_an_error_not_a_crash(exchange) -> None:
    if exchange is None:
        return
    sock = socket.socket()
    fd = sock.fileno()
    sock.close()
    assert exchange(fd, b"x", b"y", 1.0) == (errno.EBADF, b"")


def test_a_shutdown_from_another_thread_ends_the_wait(exchange, pair) -> None:
    """What PlainHTTPTransport.close does to a request a hung collector holds."""
    if exchange is None:
        return
    ours, theirs = pair
    result: list[tuple[int, bytes]] = []
    thread = threading.Thread(target=lambda: result.append(
        exchange(ours.fileno(), b"POST / HTTP/1.1\r\n\r\n", b"", 60.0)))
    thread.start()
    assert read_exactly(theirs, 19) == b"POST / HTTP/1.1\r\n\r\n"  # now it waits
    ours.shutdown(socket.SHUT_RDWR)
    thread.join(10)
    assert not thread.is_alive() and result == [(0, b"")]
