"""The HTTP server: /metrics, /health, /health/live, /health/ready and opt-in /debug/*.

A stdlib ThreadingHTTPServer on one port (default 127.0.0.1:9464), so a slow or
concurrent scraper holds only its own thread; how many connections it serves at
once and how long a client may take to send a request are bounded
(:mod:`telemetry.serving.connections`). Optional TLS and HTTP basic or bearer auth
cover every route; ``/health/live`` may stay open for probes. Routes are a table,
so other parts (profiling) add theirs without touching this module.

With the /debug routes on a loopback address, requests must name the server by a
loopback name or address in their ``Host`` header (:meth:`TelemetryServer.host_allowed`):
a web page the operator's browser opens cannot then reach them through a DNS name
that it points at 127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hmac
import ipaddress
import json
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from telemetry.config import AuthConfig, ConfigError, ServerConfig
from telemetry.serving.compression import accepts_gzip, gzip_body
from telemetry.serving.connections import ConnectionGuard

log = logging.getLogger("telemetry.server")


#: A TLS client must finish its handshake within this time or is disconnected.
TLS_HANDSHAKE_TIMEOUT_S = 10.0
#: Host names a loopback server answers to when it checks ``Host`` (addresses are
#: checked as addresses).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


class StartupError(ConfigError):
    """The server cannot start as configured (port in use, bad certificate...)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    #: Sent gzipped to a client that accepts it (:mod:`telemetry.serving.compression`).
    compressible: bool = False

    @classmethod
    def json(cls, document: Any, status: int = 200) -> Response:
        body = json.dumps(document, indent=2, default=str).encode()
        return cls(status, body + b"\n", "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode())


Handler = Callable[[Request], Response]


@dataclass
class Route:
    handler: Handler
    prefix: bool = False  # match the path and everything below it
    public: bool = False  # may be served without credentials when auth allows


class TelemetryServer:
    """Serves the route table on the configured address until :meth:`stop`."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.routes: dict[str, Route] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.connections = ConnectionGuard(config.max_connections, config.request_timeout_s)
        #: Answer only requests whose Host is a loopback name or address, when the
        #: server listens on loopback. Set by whoever adds routes that must not be
        #: reachable from a browser through DNS rebinding (the /debug routes).
        self.check_host = False

    def route(self, path: str, handler: Handler, *, prefix: bool = False,
              public: bool = False) -> None:
        self.routes[path] = Route(handler, prefix, public)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self.config.port

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> None:
        httpd = self._bind(_make_handler(self))
        httpd.connections = self.connections
        if self.config.tls:
            # No handshake in accept(): it runs on the serving thread, so one client
            # that connects and never speaks TLS would stall every other connection.
            # _Server.finish_request does it on the connection's own thread instead.
            httpd.socket = self._tls_context().wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_until_stopped,
                                        name="telemetry-http", daemon=True)
        self._thread.start()

    def _bind(self, handler_class: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        host = self.config.host
        if self.config.port_range:
            first, last = self.config.port_range
            for port in range(first, last + 1):
                try:
                    return _Server((host, port), handler_class)
                except OSError as error:
                    if error.errno != errno.EADDRINUSE:
                        raise StartupError(f"server.host: cannot listen on {host}:{port}: "
                                           f"{error}") from None
            raise StartupError(f"server.port_range: every port from {first} to {last} "
                               f"on {host} is in use")
        try:
            return _Server((host, self.config.port), handler_class)
        except OSError as error:
            address = f"{host}:{self.config.port}"
            if error.errno == errno.EADDRINUSE:
                raise StartupError(f"server.port: {address} is already in use; "
                                   f"choose another port (0 picks a free one)") from None
            raise StartupError(f"server.host: cannot listen on {address}: {error}") from None

    def _tls_context(self) -> ssl.SSLContext:
        tls = self.config.tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        except (OSError, ssl.SSLError) as error:
            raise StartupError(f"server.tls: cannot load {tls.cert_file} / {tls.key_file}: "
                               f"{error}") from None
        return context

    def stop(self, timeout_s: float = 5.0) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.stop_serving()
        if self._thread is not None:
            self._thread.join(timeout_s)
        httpd.server_close()
        self.connections.stop()

    def close_inherited(self) -> None:
        """Close the listening socket in a forked child, where no thread serves it."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.server_close()

    # -- dispatch -------------------------------------------------------------

    def find(self, path: str) -> Route | None:
        route = self.routes.get(path)
        if route is not None:
            return route
        for prefix, candidate in self.routes.items():
            if candidate.prefix and path.startswith(prefix.rstrip("/") + "/"):
                return candidate
        return None

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request naming ``host`` (its Host header) may be answered.

        Only checked with :attr:`check_host` on a loopback server: then the host must
        be a loopback name or address, with no port or this server's port.
        """
        if not (self.check_host and self.config.is_loopback):
            return True
        if not host:
            return False
        name, port = _split_host(host.strip())
        if port is not None and port != str(self.port):
            return False
        if name.lower() in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def authorised(self, route: Route, headers: Any) -> bool:
        auth = self.config.auth
        if auth is None or (route.public and auth.allow_unauthenticated_live):
            return True
        return check_credentials(auth, headers.get("Authorization", ""))


def _split_host(host: str) -> tuple[str, str | None]:
    """``name`` and ``port`` of a Host header (``[::1]:9464``, ``localhost``...)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else None
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, None


def check_credentials(auth: AuthConfig, header: str) -> bool:
    """Constant-time comparison of an Authorization header against the config.

    Compared as bytes: http.server decodes headers as latin-1, so the header's
    text is encoded back to the bytes the client sent, and the configured
    credentials are encoded as UTF-8, as clients send them. (Comparing the
    header's text as UTF-8 would never match a token with a non-ASCII character.)
    """
    raw = header.encode("latin-1", "replace")
    scheme, _, value = raw.partition(b" ")
    scheme = scheme.lower()
    if auth.bearer_token and scheme == b"bearer":
        return hmac.compare_digest(value.strip(), auth.bearer_token.encode())
    if auth.basic and scheme == b"basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except ValueError:
            return False
        user, _, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(user, auth.basic.username.encode())
        password_ok = hmac.compare_digest(password, auth.basic.password.encode())
        return user_ok and password_ok
    return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Rebind at once after a restart (TIME_WAIT); Linux still refuses a port that
    # another socket is listening on, so two processes never share one.
    allow_reuse_address = True
    request_queue_size = 64

    #: Set by TelemetryServer.start before the first connection.
    connections: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stopping = False
        self._wake_reader, self._wake_writer = socket.socketpair()
        super().__init__(*args, **kwargs)  # closes everything itself if binding fails

    def serve_until_stopped(self) -> None:
        """``serve_forever`` without its polling: it waits for a connection or for
        :meth:`stop_serving`, so an idle server never wakes (serve_forever wakes
        every poll interval to look for a shutdown request, which costs an idle
        process a little CPU and, under the GIL, its busy threads a little time)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping:
                try:
                    for key, _ in selector.select():
                        if key.fileobj is self and not self._stopping:
                            self._handle_request_noblock()  # what serve_forever calls
                except Exception:  # the server must keep serving whatever happens here
                    log.exception("HTTP server loop failed; it carries on")
                    time.sleep(0.1)  # a failure that repeats at once must not spin

    def stop_serving(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):  # already closed: nothing is waiting
            self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start the connection's thread, or close it at once when the cap is reached
        (before any TLS handshake or read: an excess connection costs no thread)."""
        if not self.connections.admit():
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread to release the slot: release it here
            self.connections.release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release(request)

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.connections.arm(request)  # the handshake and first request, bounded
        if isinstance(request, ssl.SSLSocket):  # on this connection's thread, bounded
            request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
            request.do_handshake()
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("HTTP client %s failed", client_address, exc_info=True)


def _make_handler(server: TelemetryServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "yolo-telemetry"
        sys_version = ""
        timeout = 30

        def handle_one_request(self) -> None:
            # The deadline to send the next request (kept-alive connections wait here).
            server.connections.arm(self.connection)
            super().handle_one_request()

        def parse_request(self) -> bool:
            parsed = super().parse_request()
            server.connections.disarm(self.connection)  # read: answering is not bounded
            return parsed

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def _dispatch(self, method: str) -> None:
            if not server.host_allowed(self.headers.get("Host")):
                self.close_connection = True
                response = Response.text("misdirected request: this server answers only "
                                         "to a loopback Host\n", 421)
                response.headers["Connection"] = "close"
                return self._send(response, method)
            parts = urlsplit(self.path)
            route = server.find(parts.path)
            if route is None:
                return self._send(Response.text("not found\n", 404), method)
            if not server.authorised(route, self.headers):
                scheme = "Bearer" if (server.config.auth and server.config.auth.bearer_token
                                      and not server.config.auth.basic) else "Basic"
                response = Response.text("unauthorised\n", 401)
                response.headers["WWW-Authenticate"] = f'{scheme} realm="yolo-telemetry"'
                return self._send(response, method)
            request = Request(method, parts.path, parse_qs(parts.query), self.headers)
            try:
                response = route.handler(request)
            except Exception:
                log.exception("handler for %s failed", parts.path)
                response = Response.text("internal error\n", 500)
            self._send(response, method)

        def _send(self, response: Response, method: str) -> None:
            if response.compressible:
                response.headers["Vary"] = "Accept-Encoding"
                if accepts_gzip(self.headers.get("Accept-Encoding")):
                    response.body = gzip_body(response.body)
                    response.headers["Content-Encoding"] = "gzip"
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return _Handler
