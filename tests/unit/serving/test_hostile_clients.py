"""The server against hostile clients: too many connections, requests sent a byte at
a time, DNS rebinding through the Host header, non-ASCII credentials."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest

from telemetry.serving.server import Response
from tests.unit.serving.test_server import get

#: Every wait below is bounded by this, so a regression fails instead of hanging.
DEADLINE_S = 10.0


def raw_request(port: int, request: bytes) -> bytes:
    """Send ``request`` as it is (with ``Connection: close``) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@contextmanager
def open_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that sent one byte of a request and then nothing."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port),
                                                                timeout=DEADLINE_S))
            sock.sendall(b"G")
            sockets.append(sock)
        yield sockets


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed ``sock`` (it reads end-of-file or a reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.setblocking(True)


def wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# -- connection cap -------------------------------------------------------------


def test_at_the_cap_the_longest_waiting_connection_makes_room(start_telemetry) -> None:
    """Slow clients hold every slot: a scrape is still served, and it is the oldest of
    them that is closed for it."""
    tel = start_telemetry(server={"max_connections": 8, "request_timeout_s": 60})
    connections = tel.server.connections
    threads_before = threading.active_count()
    with open_connections(tel.server.port, 8) as slow:
        wait_for(lambda: connections.stats()["waiting"] == 8, "8 connections waiting")
        assert get(f"{tel.url}/health/live")[0] == 200
        assert sum(not still_open(sock) for sock in slow) == 1
        assert connections.stats()["evicted"] == 1
        with open_connections(tel.server.port, 50) as newer:
            # the oldest go first: the first eight, then the older of the newer ones
            assert all(closed_by_server(sock) for sock in slow)
            assert closed_by_server(newer[0])
            wait_for(lambda: connections.stats()["evicted"] >= 1 + 50 - 8, "evictions")
            assert still_open(newer[-1])
            assert threading.active_count() - threads_before <= 2 * 8 + 1  # + the watch
    assert connections.stats()["refused"] == 0


def test_at_the_cap_with_every_slot_answering_new_connections_are_refused(
        start_telemetry) -> None:
    tel = start_telemetry(server={"max_connections": 2})
    reasons: list[str] = []
    tel.server.connections.on_drop = reasons.append
    release = threading.Event()
    tel.server.route("/block", lambda _: (release.wait(DEADLINE_S), Response.text("done\n"))[1])
    answers: list[int] = []
    busy = [threading.Thread(target=lambda: answers.append(get(f"{tel.url}/block")[0]))
            for _ in range(2)]
    for thread in busy:
        thread.start()
    try:
        wait_for(lambda: tel.server.connections.stats()["active"] == 2
                 and tel.server.connections.stats()["waiting"] == 0,
                 "2 requests being answered")
        with open_connections(tel.server.port, 20) as excess:
            assert all(closed_by_server(sock) for sock in excess)
        assert tel.server.connections.stats()["refused"] == 20
        assert reasons == ["refused"] * 20
    finally:
        release.set()
        for thread in busy:
            thread.join(DEADLINE_S)
    assert answers == [200, 200]
    wait_for(lambda: tel.server.connections.active == 0, "the slots to be released")
    assert get(f"{tel.url}/health/live")[0] == 200


# -- request deadline -----------------------------------------------------------


def test_a_request_sent_a_byte_at_a_time_is_cut_at_the_deadline(start_telemetry) -> None:
    """Slow-loris: each byte arrives well within the socket timeout, so only a deadline
    on the whole request frees the thread."""
    tel = start_telemetry(server={"request_timeout_s": 0.5})
    reasons: list[str] = []
    tel.server.connections.on_drop = reasons.append
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", tel.server.port), timeout=DEADLINE_S) as sock:
        closed = False
        for byte in b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if time.monotonic() - started > DEADLINE_S:
                break
            time.sleep(0.05)  # the client's pace, not a wait for the server
        closed = closed or closed_by_server(sock)
    elapsed = time.monotonic() - started
    assert closed, "the server kept a request that never ended"
    assert 0.4 < elapsed < 3.0, elapsed
    assert tel.server.connections.stats()["timed_out"] >= 1
    assert "timed_out" in reasons
    wait_for(lambda: tel.server.connections.active == 0, "the slot to be released")


def test_many_slow_clients_hold_bounded_threads_and_others_are_served(start_telemetry) -> None:
    tel = start_telemetry(server={"max_connections": 16, "request_timeout_s": 1.0})
    threads_before = threading.active_count()
    with open_connections(tel.server.port, 300) as slow:
        peak = threading.active_count() - threads_before
        assert peak <= 2 * 16 + 1, peak
        for sock in slow:  # all of them closed: refused at once or cut at the deadline
            assert closed_by_server(sock)
    stats = tel.server.connections.stats()
    assert stats["evicted"] + stats["timed_out"] == 300, stats
    assert get(f"{tel.url}/health/live")[0] == 200


def test_answering_a_long_request_is_not_cut_by_the_deadline(start_telemetry) -> None:
    """The deadline bounds receiving a request, not the answer: a 1.5 s profile with a
    0.5 s deadline still arrives."""
    tel = start_telemetry(server={"request_timeout_s": 0.5},
                          debug={"enabled": True, "profile_max_seconds": 5})
    status, _, body = get(f"{tel.url}/debug/profile?seconds=1.5&format=collapsed")
    assert status == 200
    assert body


def test_an_idle_kept_alive_connection_is_closed_at_the_deadline(start_telemetry) -> None:
    tel = start_telemetry(server={"request_timeout_s": 0.5})
    with socket.create_connection(("127.0.0.1", tel.server.port), timeout=DEADLINE_S) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while b"alive" not in answer:  # the head and the body may come apart
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert closed_by_server(sock)
        assert time.monotonic() - started < 3.0


# -- Host header (DNS rebinding) -------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}",
                                  "127.0.0.1", "localhost", "LOCALHOST:{port}"])
def test_debug_on_loopback_answers_loopback_hosts(start_telemetry, host: str) -> None:
    tel = start_telemetry(debug={"enabled": True})
    port = tel.server.port
    answer = raw_request(port, f"GET /debug/slow HTTP/1.1\r\nHost: {host.format(port=port)}\r\n"
                               f"Connection: close\r\n\r\n".encode())
    assert status_of(answer) == 200


@pytest.mark.parametrize("host", ["attacker.example:{port}", "attacker.example",
                                  "127.0.0.1:1", "localhost.attacker.example:{port}",
                                  "10.0.0.1:{port}", None])
def test_debug_on_loopback_refuses_other_hosts(start_telemetry, host: str | None) -> None:
    """A page served from attacker.example whose name is rebound to 127.0.0.1 sends
    ``Host: attacker.example:port``: it must not read /debug nor anything else."""
    tel = start_telemetry(debug={"enabled": True})
    port = tel.server.port
    header = f"Host: {host.format(port=port)}\r\n" if host is not None else ""
    for path in ("/debug/slow", "/debug/profile?seconds=0.1", "/metrics", "/health"):
        answer = raw_request(port, f"GET {path} HTTP/1.1\r\n{header}"
                                   f"Connection: close\r\n\r\n".encode())
        assert status_of(answer) == 421, (path, answer[:80])


def test_without_debug_the_host_is_not_checked(start_telemetry) -> None:
    """/metrics and /health carry nothing secret: scrapers may use any name."""
    tel = start_telemetry()
    answer = raw_request(tel.server.port, b"GET /metrics HTTP/1.1\r\nHost: some-alias:9\r\n"
                                          b"Connection: close\r\n\r\n")
    assert status_of(answer) == 200


# -- credentials ----------------------------------------------------------------


def test_a_non_ascii_bearer_token_matches(start_telemetry) -> None:
    token = "jeton-secret-ünïcødé-€-0123456789"
    tel = start_telemetry(server={"auth": {"bearer_token": token}})
    port = tel.server.port

    def with_token(value: bytes) -> int:
        return status_of(raw_request(port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                           b"Authorization: Bearer " + value +
                                           b"\r\nConnection: close\r\n\r\n"))

    assert with_token(token.encode()) == 200  # as clients send it: UTF-8
    assert with_token(token.encode()[:-1] + b"8") == 401
    assert with_token(token.encode("latin-1", "replace")) == 401


def test_non_ascii_basic_credentials_match(start_telemetry) -> None:
    tel = start_telemetry(server={"auth": {"basic": {"username": "opé", "password": "mötdepasse"}}})
    good = base64.b64encode("opé:mötdepasse".encode()).decode()
    bad = base64.b64encode("opé:motdepasse".encode()).decode()
    assert get(f"{tel.url}/metrics", {"Authorization": f"Basic {good}"})[0] == 200
    assert get(f"{tel.url}/metrics", {"Authorization": f"Basic {bad}"})[0] == 401


def test_undecodable_basic_credentials_are_refused(start_telemetry) -> None:
    tel = start_telemetry(server={"auth": {"basic": {"username": "ops", "password": "pw"}}})
    for value in ("Basic !!!", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()):
        assert get(f"{tel.url}/metrics", {"Authorization": value})[0] == 401


def test_the_serving_loop_outlives_a_failure(start_telemetry) -> None:
    tel = start_telemetry()
    httpd = tel.server._httpd
    handle = httpd._handle_request_noblock
    calls: list[int] = []

    def fails_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a failure in the accept loop")
        handle()

    httpd._handle_request_noblock = fails_once
    assert get(f"{tel.url}/health/live")[0] == 200  # before, the serving thread was gone
    assert len(calls) >= 2
