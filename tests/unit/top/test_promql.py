"""The Prometheus source when Prometheus itself cannot be read."""

from __future__ import annotations

import socket

from telemetry.top.promql import PrometheusSource
from telemetry.top.readings import Reading


def _refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_an_unreachable_prometheus_is_one_placeholder_then_each_known_instance() -> None:
    url = _refused_url()
    source = PrometheusSource(url, timeout_s=1)
    (reading,) = source.read()
    assert reading.placeholder and reading.instance == url
    assert "Prometheus: connection refused" in (reading.error or "")
    assert source.history() == []
    source._known = ["a:9464", "b:9464"]  # as after readings that named them
    failed = source.read()
    assert [(r.instance, r.placeholder, r.ok) for r in failed] == [
        ("a:9464", False, False), ("b:9464", False, False)]
    assert all(isinstance(r, Reading) and "refused" in (r.error or "") for r in failed)
