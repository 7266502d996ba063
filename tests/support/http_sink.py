"""A local HTTP endpoint that keeps every request body, for exporter unit tests that
check the exact bytes sent (the real collectors' tests use tests/backends)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Collector:
    """Keeps every POSTed body (and its request path and headers); answers ``status``
    with ``response`` as the body (empty unless set)."""

    def __init__(self, path: str) -> None:
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
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
