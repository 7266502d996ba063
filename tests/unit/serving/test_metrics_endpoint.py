"""/metrics over HTTP: gzip when the scraper accepts it, the name[] filter, and the
format the Accept header asks for."""

from __future__ import annotations

import gzip
import urllib.request
from collections.abc import Callable

import pytest

from telemetry import Telemetry
from telemetry.serving.compression import accepts_gzip
from tests.conftest import send
from tests.unit.exporters.prometheus.support import OPENMETRICS, parse, samples_of


def get(tel: Telemetry, path: str, **headers: str) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(f"{tel.url}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read(), dict(response.headers.items())


def test_gzip_when_accepted(start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry()
    for i in range(50):
        send("handoff_completed", from_agent=f"a{i}", to_agent="dev", duration_s=0.2)
    plain, plain_headers = get(tel, "/metrics")
    zipped, headers = get(tel, "/metrics", **{"Accept-Encoding": "br, gzip;q=0.8"})
    assert "Content-Encoding" not in plain_headers
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Vary"] == plain_headers["Vary"] == "Accept-Encoding"
    assert int(headers["Content-Length"]) == len(zipped) < len(plain) / 5
    unzipped = gzip.decompress(zipped)
    assert samples_of(parse(unzipped, False)).keys() == samples_of(parse(plain, False)).keys()
    refused, headers = get(tel, "/metrics", **{"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in headers and refused.startswith(b"# HELP")
    _, health_headers = get(tel, "/health", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in health_headers  # only /metrics is compressed


@pytest.mark.parametrize(("header", "accepted"), [
    ("gzip", True), ("GZIP", True), ("deflate, gzip;q=1.0", True), ("x-gzip", True),
    ("gzip;q=0", False), ("gzip; q=0.0", False), ("identity", False), ("", False),
    (None, False), ("gzipped", False),
])
def test_accept_encoding(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_the_name_filter_over_http(start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry()
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.2)
    body, headers = get(tel, "/metrics?name[]=yolo_handoffs_total&name[]=yolo_mode"
                             "&name%5B%5D=yolo_handoffs_created", Accept=OPENMETRICS)
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    families = parse(body, True)
    assert [f.name for f in families] == ["yolo_handoffs", "yolo_mode"]
    assert {s.name for f in families for s in f.samples} == \
        {"yolo_handoffs_total", "yolo_handoffs_created", "yolo_mode"}
    text, headers = get(tel, "/metrics?name[]=yolo_handoffs_total")
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert text == (b"# HELP yolo_handoffs_total Completed handoffs between agents.\n"
                    b"# TYPE yolo_handoffs_total counter\n"
                    b'yolo_handoffs_total{from_agent="pm",to_agent="dev"} 1.0\n')
