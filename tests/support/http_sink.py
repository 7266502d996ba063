"""A local HTTP endpoint that keeps every request body, for exporter unit tests that
check the exact bytes sent (the real collectors' tests use tests/backends)."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Collector:
    """Keeps every POSTed body (and its request path and headers); answers ``status``
    with ``response`` as the body (empty unless set); over HTTPS with ``tls``."""

    def __init__(self, path: str, tls: ssl.SSLContext | None = None) -> None:
        self.bodies: list[bytes] = []
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.response = b""
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.bodies.append(body)
                collector.requests.append((self.path, dict(self.headers), body))
                self.send_response(collector.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(collector.response)))
                self.end_headers()
                self.wfile.write(collector.response)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
