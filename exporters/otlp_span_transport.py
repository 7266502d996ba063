"""A plain HTTP transport for the OTLP/HTTP span and metric exporters: one kept-alive
connection through the standard library's ``http.client``.

The SDK's OTLP/HTTP exporters send through ``requests``, which reads the proxy
variables and ``~/.netrc`` again on every request and builds several objects around
it: about half a millisecond of CPU per span batch, beyond the send itself, on the
span export thread. For a plain ``http://`` collector endpoint that no proxy
variable and no netrc entry applies to (checked once, when the exporter is made),
none of that matters, so :func:`plain_transport_for` gives the SDK's HTTP client a
:class:`PlainHTTPTransport` instead. The SDK's client still does everything else
(headers, compression, timeouts, retries with backoff, ``Retry-After``): the
transport only sends one request and reads its answer.

HTTPS endpoints, proxies, netrc credentials and credential-provider sessions keep
the SDK's ``requests`` transport.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
        """The response headers (``http.client``'s, case-insensitive for ``get``)."""
        return self.response_headers if self.response_headers is not None else {}


class PlainHTTPTransport(BaseHTTPTransport):
    """Requests over one persistent ``http.client`` connection, opened on first use
    and again after any error. One request at a time; :meth:`close` may be called
    from another thread and interrupts a request in progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._address: tuple[str, int] | None = None
        self._targets: dict[str, tuple[tuple[str, int], str]] = {}

    def _target(self, url: str) -> tuple[tuple[str, int], str]:
        """(host, port) and the request path of ``url``; parsed once."""
        target = self._targets.get(url)
        if target is None:
            parts = urllib.parse.urlsplit(url)
            path = parts.path or "/"
            if parts.query:
                path = f"{path}?{parts.query}"
            target = ((parts.hostname or "localhost", parts.port or 80), path)
            if len(self._targets) >= 16:
                self._targets.clear()
            self._targets[url] = target
        return target

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                timeout: float | None = None, data: bytes | None = None) -> BaseHTTPResult:
        address, path = self._target(url)
        with self._lock:
            connection = self._connection
            try:
                if connection is None or self._address != address:
                    self._drop()
                    connection = http.client.HTTPConnection(*address, timeout=timeout)
                    self._connection, self._address = connection, address
                elif connection.sock is not None:
                    connection.sock.settimeout(timeout)
                else:
                    connection.timeout = timeout
                connection.request(method, path, body=data, headers=headers or {})
                response = connection.getresponse()
                body = response.read()
            except Exception as error:  # reported to the SDK's client, which retries
                self._drop()
                return PlainHTTPResult(error=error)
            if response.will_close:
                self._drop()
            return PlainHTTPResult(status_code=response.status, reason=response.reason,
                                   body=body, response_headers=response.headers)

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def close(self) -> None:
        connection = self._connection
        if connection is not None:
            sock = connection.sock
            if sock is not None:  # wakes a request blocked on it: it fails at once
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            connection.close()

    def is_connection_error(self, exception: Exception | None) -> bool:
        return isinstance(exception, OSError | http.client.HTTPException)
