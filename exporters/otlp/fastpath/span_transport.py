"""A plain HTTP transport for the OTLP/HTTP span and metric exporters: one kept-alive
connection, HTTP/1.1 spoken by ``h11``.

The SDK's OTLP/HTTP exporters send through ``requests``, which reads the proxy
variables and ``~/.netrc`` again on every request and builds several objects around
it: about half a millisecond of CPU per span batch, beyond the send itself, on the
span export thread. For a plain ``http://`` collector endpoint that no proxy
variable and no netrc entry applies to (checked once, when the exporter is made),
none of that matters, so :func:`plain_transport_for` gives the SDK's HTTP client a
:class:`PlainHTTPTransport` instead. The SDK's client still does everything else
(headers, compression, timeouts, retries with backoff, ``Retry-After``): the
transport only sends one request and reads its answer.

``h11`` writes and parses the messages and leaves the socket to us, so a request's
head and body go out in one ``sendall`` and the answer is usually one ``recv``. That
matters on the span worker, which exports while the orchestrator's thread runs:
every blocking call gives up the interpreter lock, and taking it back from a busy
thread costs CPU. With a thread busy beside it, a batch of 512 spans (68 KB) cost
about 280 µs of the worker's CPU this way against 400 µs through ``http.client``
(head and body in two sends, the answer read through a buffered file); on an idle
process both cost about 130 µs.

HTTPS endpoints, proxies, netrc credentials and credential-provider sessions keep
the SDK's ``requests`` transport.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import h11
from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport

#: Variables naming a credential provider: it supplies a requests session of its own.
_CREDENTIAL_VARIABLES = ("OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
                         "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER")


def plain_transport_for(endpoint: str | None, environ: Mapping[str, str] = os.environ,
                        signal: str = "traces") -> PlainHTTPTransport | None:
    """A plain transport for ``endpoint``, or None when the SDK's requests transport
    must be used (not plain HTTP, a proxy or netrc entry applies, a credential
    provider is configured for any signal or for ``signal``: traces, metrics)."""
    if not endpoint or urllib.parse.urlsplit(endpoint).scheme.lower() != "http":
        return None
    variables = (_CREDENTIAL_VARIABLES[0],
                 f"OTEL_PYTHON_EXPORTER_OTLP_HTTP_{signal.upper()}_CREDENTIAL_PROVIDER")
    if any(environ.get(name) for name in variables):
        return None
    try:
        from requests.utils import get_environ_proxies, get_netrc_auth
    except ImportError:  # pragma: no cover - requests comes with the SDK's exporter
        return None
    if get_environ_proxies(endpoint) or get_netrc_auth(endpoint):
        return None
    return PlainHTTPTransport()


@dataclass(frozen=True, slots=True)
class PlainHTTPResult(BaseHTTPResult):
    """One answer (or the error that stopped the request)."""

    body: bytes = b""
    response_headers: Any = field(default=None, hash=False, compare=False)

    def content(self) -> bytes:
        return self.body

    def headers(self) -> Mapping[str, str]:
        """The response headers, case-insensitive."""
        return self.response_headers if self.response_headers is not None else _Headers(())


class _Headers(Mapping[str, str]):
    """Response headers as h11 gives them (lower-case names, bytes), read as a
    case-insensitive mapping; repeated headers are joined with commas."""

    __slots__ = ("_fields", "_map")

    def __init__(self, fields: Any) -> None:
        self._fields = fields
        self._map: dict[str, str] | None = None

    def _mapping(self) -> dict[str, str]:
        if self._map is None:
            joined: dict[str, str] = {}
            for name, value in self._fields:
                key, text = name.decode("latin-1").lower(), value.decode("latin-1")
                joined[key] = f"{joined[key]}, {text}" if key in joined else text
            self._map = joined
        return self._map

    def __getitem__(self, key: str) -> str:
        return self._mapping()[key.lower()]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._mapping().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._mapping()

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())


#: The longest answer body read (h11 bounds the head itself).
_MAX_ANSWER_BODY = 16 * 1024 * 1024

#: Request headers the transport writes itself: the caller's are not repeated.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class PlainHTTPTransport(BaseHTTPTransport):
    """Requests over one persistent connection, opened on first use and again after
    any error. One request at a time; :meth:`close` may be called from another thread
    and interrupts a request in progress.

    Closing is final: a request after :meth:`close` fails at once. The SDK's client
    retries a failed request once at once, on a new connection; after close (the
    exporter shutting down because stopping ran out of time) that retry would open
    a connection to the collector that just hung and wait out the whole timeout
    again, on a batch the exporter has already given up on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._protocol: h11.Connection | None = None
        self._address: tuple[str, int] | None = None
        self._targets: dict[str, tuple[tuple[str, int], str, str]] = {}
        self._closed = False
        #: Given the body of every 2xx answer that has one: an OTLP partial success
        #: (:class:`exporters.otlp.partial.PartialSuccess`), which the SDK's client
        #: does not read.
        self.on_answer: Callable[[bytes], None] | None = None

    def _target(self, url: str) -> tuple[tuple[str, int], str, str]:
        """(host, port), the request path and the Host header of ``url``; parsed once."""
        target = self._targets.get(url)
        if target is None:
            parts = urllib.parse.urlsplit(url)
            path = parts.path or "/"
            if parts.query:
                path = f"{path}?{parts.query}"
            host, port = parts.hostname or "localhost", parts.port or 80
            name = f"[{host}]" if ":" in host else host
            target = ((host, port), path, name if port == 80 else f"{name}:{port}")
            if len(self._targets) >= 16:
                self._targets.clear()
            self._targets[url] = target
        return target

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                timeout: float | None = None, data: bytes | None = None) -> BaseHTTPResult:
        address, path, host = self._target(url)
        body = data or b""
        fields = [("Host", host), ("Content-Length", str(len(body)))]
        fields += [(key, value) for key, value in (headers or {}).items()
                   if key.lower() not in _OWN_HEADERS]
        with self._lock:
            try:
                sock, protocol = self._sock, self._protocol
                if sock is None or protocol is None or self._address != address:
                    self._drop()
                    self._check_open()
                    sock = socket.create_connection(address, timeout)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    protocol = h11.Connection(h11.CLIENT)
                    self._sock, self._protocol, self._address = sock, protocol, address
                    self._check_open()  # closed while connecting: close saw no socket
                else:
                    sock.settimeout(timeout)
                head = protocol.send(h11.Request(method=method, target=path, headers=fields))
                if body:
                    protocol.send(h11.Data(data=body))  # framing only: the bytes are body
                protocol.send(h11.EndOfMessage())
                # The head and the body in one send: one system call, and on a busy
                # process one wait for the interpreter lock fewer.
                sock.sendall(head + body)
                response, chunks = self._answer(sock, protocol)
            except Exception as error:  # reported to the SDK's client, which retries
                self._drop()
                return PlainHTTPResult(error=error)
            if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
                protocol.start_next_cycle()
            else:  # the collector closes the connection (or did not say it keeps it)
                self._drop()
            result = PlainHTTPResult(status_code=response.status_code,
                                     reason=response.reason.decode("latin-1"),
                                     body=b"".join(chunks),
                                     response_headers=_Headers(response.headers))
        on_answer = self.on_answer
        if on_answer is not None and 200 <= response.status_code < 300 and result.body:
            with contextlib.suppress(Exception):  # reading the answer must not fail the send
                on_answer(result.body)
        return result

    @staticmethod
    def _answer(sock: socket.socket, protocol: h11.Connection) -> tuple[Any, list[bytes]]:
        """Read the final response and its body (1xx answers are skipped)."""
        response, chunks, size = None, [], 0
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(sock.recv(65536))  # b"": the peer closed
                continue
            kind = type(event)
            if kind is h11.Response:
                response = event
            elif kind is h11.Data:
                size += len(event.data)
                if size > _MAX_ANSWER_BODY:  # a collector answers with a few bytes
                    raise h11.RemoteProtocolError("the collector's answer is too long")
                chunks.append(event.data)
            elif kind is h11.EndOfMessage:
                return response, chunks
            elif kind is h11.ConnectionClosed:
                raise ConnectionResetError("the collector closed the connection")

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionAbortedError("the exporter is shut down")

    def _drop(self) -> None:
        sock, self._sock, self._protocol = self._sock, None, None
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self._closed = True  # before taking the socket: request() checks in that order
        sock, self._sock, self._protocol = self._sock, None, None
        if sock is not None:
            with contextlib.suppress(OSError):  # wakes a request blocked on it: it fails
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def is_connection_error(self, exception: Exception | None) -> bool:
        return isinstance(exception, OSError | h11.RemoteProtocolError)
