"""Connections the server closes are counted in yolo_telemetry_dropped_total and shown in
/health, like every other drop."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from telemetry import catalogue as cat


def _poll(predicate, deadline_s: float = 10.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_connection_past_its_request_deadline_is_counted_and_shown(start_telemetry):
    tel = start_telemetry(server={"request_timeout_s": 0.2})
    port = tel.server.port
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest of the head
        dropped = lambda: tel.aggregator.value(cat.DROPPED, ("http_server", "timed_out"))  # noqa: E731
        assert _poll(lambda: dropped() == 1)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
        check = json.load(answer)["checks"]["http_server"]
    assert check["status"] == "ok"
    assert check["timed_out"] == 1
    assert check["max_connections"] == 64
