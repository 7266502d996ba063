"""Shared fixtures: a fresh aggregator or a running Telemetry per test.

blinker's default namespace is process-wide, so every fixture disconnects what it
connected: a leftover receiver would double-count the next test's events.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blinker
import pytest
import trustme

from telemetry import Telemetry, load_config
from telemetry.aggregation.aggregator import Aggregator


class FakeClock:
    """A monotonic clock tests move by hand, for windows and staleness."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def send(signal_name: str, **fields: Any) -> None:
    """Send a contract signal by its short name (``send("handoff_completed", ...)``)."""
    blinker.signal(f"yolo.{signal_name}").send(None, **fields)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aggregator(clock: FakeClock) -> Iterator[Aggregator]:
    agg = Aggregator(clock=clock)
    agg.connect()
    yield agg
    agg.disconnect()


@pytest.fixture
def start_telemetry() -> Iterator[Callable[..., Telemetry]]:
    """Start Telemetry from a config dict (server on a free port); stopped after the test."""
    started: list[Telemetry] = []

    def start(config: dict | None = None, **sections: Any) -> Telemetry:
        data = dict(config or {})
        data.update(sections)
        data.setdefault("server", {}).setdefault("port", 0)
        tel = Telemetry(load_config(data, environ={})).start()
        started.append(tel)
        return tel

    yield start
    for tel in started:
        tel.stop()


@pytest.fixture
def tls_telemetry(start_telemetry: Callable[..., Telemetry],
                  tmp_path: Path) -> tuple[Telemetry, ssl.SSLContext]:
    """Telemetry serving HTTPS with a throwaway CA's certificate, and a client context
    that trusts that CA."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    tel = start_telemetry(server={"tls": {"cert_file": str(cert_file),
                                          "key_file": str(key_file)}})
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return tel, client
