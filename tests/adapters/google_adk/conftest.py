"""Offline fixtures for the Google ADK adapter: a scripted model only, no API key, no
Google Cloud project, nothing ADK or google-genai would send anywhere."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

for key in [key for key in os.environ
            if key.endswith("_API_KEY") or key.startswith(("GOOGLE_", "OTEL_EXPORTER_"))]:
    os.environ.pop(key)
# google-genai is never asked for a model (ScriptedLlm answers), and would refuse
# without a key; Vertex AI (ADK 2.13: "enterprise") off, so no project or credentials
# are looked up.
os.environ["GOOGLE_GENAI_USE_ENTERPRISE"] = "false"

from telemetry.adapters import Instrumentation  # noqa: E402
from telemetry.adapters import google_adk as adapter  # noqa: E402


@pytest.fixture
def instrumented() -> Iterator[Instrumentation]:
    handle = adapter.instrument()
    yield handle
    handle.uninstrument()


LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection or name lookup past loopback fails the test: neither ADK nor
    google-genai may phone anywhere (the backends the tests use are on loopback)."""
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def loopback_only(host: Any) -> None:
        if isinstance(host, str) and host not in LOOPBACK:
            raise AssertionError(f"a network call to {host!r} in an offline test")

    def checked_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            loopback_only(address[0])
        return connect(self, address)

    def checked_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        loopback_only(host.decode() if isinstance(host, bytes) else host)
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", checked_connect)
    monkeypatch.setattr(socket, "getaddrinfo", checked_lookup)
