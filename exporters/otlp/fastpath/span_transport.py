"""A plain HTTP transport for the OTLP/HTTP span and metric exporters: one kept-alive
connection, HTTP/1.1 written and read by :mod:`exporters.otlp.fastpath.http1`.

The SDK's OTLP/HTTP exporters send through ``requests``, which reads the proxy
variables and ``~/.netrc`` again on every request and builds several objects around
it: about half a millisecond of CPU per span batch, beyond the send itself, on the
span export thread. For a plain ``http://`` collector endpoint that no proxy
variable and no netrc entry applies to (checked once, when the exporter is made),
none of that matters, so :func:`plain_transport_for` gives the SDK's HTTP client a
:class:`PlainHTTPTransport` instead. The SDK's client still does everything else
(headers, compression, timeouts, retries with backoff, ``Retry-After``): the
transport only sends one request and reads its answer.

The request head is made once per URL and set of headers; a request is that head,
the body's length and the body, in one ``sendall``, and the answer is usually one
``recv``. That matters on the span worker, which exports while the orchestrator's
thread runs: every blocking call gives up the interpreter lock, and taking it back
from a busy thread costs CPU, as does every line of Python the worker runs with its
caches cold. Measured on the span export thread of the overhead benchmark's traced
pipeline (512-span batches of 134 KB, rotel discarding), the SDK client's send took
about 600 µs of CPU per batch through ``h11`` (an event object per message part, a
state machine, the headers validated on every request) and about 330 µs this way;
through ``http.client`` (head and body in two sends, the answer read through a
buffered file) it had been more still. Compiled, the send and the wait for the answer
are one call (:func:`exporters.otlp.fastpath.exchange.exchange`) that lets the
interpreter lock go once instead of four times: about 260 µs.

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

from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport

from exporters.otlp.fastpath.http1 import read_answer, request_head

try:  # compiled builds: a request and the start of its answer with one release of the GIL
    from exporters.otlp.fastpath.exchange import exchange
except ImportError:  # pure Python: sendall and recv
    exchange = None

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
    """Response headers as :func:`~exporters.otlp.fastpath.http1.read_answer` gives them
    (lower-case names, bytes), read as a
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


#: The longest answer body read (:data:`~exporters.otlp.fastpath.http1.MAX_HEAD`
#: bounds the head).
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
        self._address: tuple[str, int] | None = None
        #: (method, url, headers) -> the collector's address and the request head.
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]],
                          tuple[tuple[str, int], bytes]] = {}
        self._closed = False
        #: Given the body of every 2xx answer that has one: an OTLP partial success
        #: (:class:`exporters.otlp.partial.PartialSuccess`), which the SDK's client
        #: does not read.
        self.on_answer: Callable[[bytes], None] | None = None

    def _head(self, method: str, url: str,
              headers: dict[str, str] | None) -> tuple[tuple[str, int], bytes]:
        """The collector's (host, port) and the request head up to the
        ``Content-Length`` value (:func:`~exporters.otlp.fastpath.http1.request_head`),
        made once for each URL and set of headers."""
        key = (method, url, tuple(headers.items()) if headers else ())
        cached = self._heads.get(key)
        if cached is None:
            parts = urllib.parse.urlsplit(url)
            path = parts.path or "/"
            if parts.query:
                path = f"{path}?{parts.query}"
            host, port = parts.hostname or "localhost", parts.port or 80
            name = f"[{host}]" if ":" in host else host
            own = [(field, value) for field, value in key[2]
                   if field.lower() not in _OWN_HEADERS]
            cached = ((host, port),
                      request_head(method, path, name if port == 80 else f"{name}:{port}", own))
            if len(self._heads) >= 16:
                self._heads.clear()
            self._heads[key] = cached
        return cached

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                timeout: float | None = None, data: bytes | None = None) -> BaseHTTPResult:
        body = data or b""
        with self._lock:
            try:
                address, head = self._head(method, url, headers)
                sock = self._sock
                if sock is None or self._address != address:
                    self._drop()
                    self._check_open()
                    sock = socket.create_connection(address, timeout)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._sock, self._address = sock, address
                    self._check_open()  # closed while connecting: close saw no socket
                elif sock.gettimeout() != timeout:  # a system call: only when it changes
                    sock.settimeout(timeout)
                if exchange is not None and type(body) is bytes:
                    # The request sent and the answer awaited with the GIL let go once
                    # (exchange.pyx), not once per system call.
                    error, received = exchange(sock.fileno(), b"%s%d\r\n\r\n" % (head, len(body)),
                                               body, -1.0 if timeout is None else timeout)
                    if error:  # OSError makes it the subclass: TimeoutError, ...
                        raise OSError(error, os.strerror(error))
                    answer = read_answer(sock, method, _MAX_ANSWER_BODY, received)
                else:
                    # Head and body in one send: one system call, and on a busy process
                    # one wait for the interpreter lock fewer.
                    sock.sendall(b"%s%d\r\n\r\n%s" % (head, len(body), body))
                    answer = read_answer(sock, method, _MAX_ANSWER_BODY)
            except Exception as error:  # reported to the SDK's client, which retries
                self._drop()
                return PlainHTTPResult(error=error)
            if not answer.keep_alive:  # the collector closes it, or may
                self._drop()
        result = PlainHTTPResult(status_code=answer.status, reason=answer.reason,
                                 body=answer.body, response_headers=_Headers(answer.fields))
        on_answer = self.on_answer
        if on_answer is not None and 200 <= answer.status < 300 and answer.body:
            with contextlib.suppress(Exception):  # reading the answer must not fail the send
                on_answer(answer.body)
        return result

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionAbortedError("the exporter is shut down")

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self._closed = True  # before taking the socket: request() checks in that order
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):  # wakes a request blocked on it: it fails
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def is_connection_error(self, exception: Exception | None) -> bool:
        return isinstance(exception, OSError)  # AnswerError is one
