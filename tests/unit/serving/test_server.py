"""The HTTP server: routes, status codes, content negotiation, readiness, TLS and auth."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from telemetry import Telemetry
from telemetry.config import ConfigError
from tests.conftest import send


def get(url: str, headers: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_metrics_in_text_and_openmetrics(start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry()
    send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.2)
    status, headers, body = get(f"{tel.url}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'yolo_handoffs_total{from_agent="pm",to_agent="dev"} 1.0' in body.decode()

    status, headers, body = get(f"{tel.url}/metrics",
                                {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    text = body.decode()
    assert text.rstrip().endswith("# EOF")
    assert "# UNIT yolo_handoff_duration_seconds seconds" in text


def test_health_document_and_status_codes(start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry()
    send("agent_activated", agent="dev")
    send("context_updated", agent="dev", items=3, tokens=100)
    status, _, body = get(f"{tel.url}/health")
    document = json.loads(body)
    assert status == 200
    assert document["status"] == "healthy"
    for key in ("mode", "current_agent", "uptime_seconds", "errors_last_hour",
                "memory_usage_mb", "context_health", "checks"):
        assert key in document
    assert document["current_agent"] == "dev"
    assert document["checks"]["exporter:prometheus"]["status"] == "ok"

    send("context_updated", agent="dev", items=30, tokens=8000)  # past the warning level
    status, _, body = get(f"{tel.url}/health")
    assert (status, json.loads(body)["status"]) == (200, "degraded")

    send("context_updated", agent="dev", items=30, tokens=9500)  # past the critical level
    status, _, body = get(f"{tel.url}/health")
    assert (status, json.loads(body)["status"]) == (503, "unhealthy")
    assert json.loads(body)["context_health"]["agents"]["dev"]["status"] == "critical"


def test_a_failing_exporter_degrades_health(start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry()
    tel.exporters["prometheus"].status.failed(RuntimeError("scrape broke"), tel.aggregator)
    document = tel.health()
    assert document["status"] == "degraded"
    assert document["checks"]["exporter:prometheus"]["last_error"] == "RuntimeError: scrape broke"


def test_live_and_ready(start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry()
    assert get(f"{tel.url}/health/live")[0] == 200
    assert get(f"{tel.url}/health/ready")[0] == 200
    tel.state = "stopping"  # as during stop(), while exporters flush
    assert get(f"{tel.url}/health/ready")[0] == 503
    tel.state = "running"


def test_ready_is_503_before_start() -> None:
    from telemetry.config import load
    from telemetry.serving.server import TelemetryServer

    tel = Telemetry(load({"server": {"port": 0}}, environ={}))
    server = TelemetryServer(tel.config.server)
    tel._add_routes(server)
    server.start()
    try:
        assert get(f"{server.url}/health/ready")[0] == 503
    finally:
        server.stop()


def test_unknown_path_is_404_and_debug_is_off_by_default(
    start_telemetry: Callable[..., Telemetry],
) -> None:
    tel = start_telemetry()
    assert get(f"{tel.url}/nope")[0] == 404
    assert get(f"{tel.url}/debug/profile")[0] == 404


def test_metrics_404_when_prometheus_is_disabled(
    start_telemetry: Callable[..., Telemetry],
) -> None:
    tel = start_telemetry(exporters={"prometheus": {"enabled": False}})
    assert get(f"{tel.url}/metrics")[0] == 404


def test_port_in_use_is_a_clear_error(start_telemetry: Callable[..., Telemetry]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"server.port: 127.0.0.1:{port} is already in use"):
            start_telemetry(server={"port": port})


def test_basic_auth_on_every_route_but_live(start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry(server={"auth": {"basic": {"username": "ops", "password": "s3cret"}}})
    good = {"Authorization": "Basic " + base64.b64encode(b"ops:s3cret").decode()}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:guess").decode()}
    for path in ("/metrics", "/health", "/health/ready"):
        status, headers, _ = get(f"{tel.url}{path}")
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert get(f"{tel.url}{path}", wrong)[0] == 401
        assert get(f"{tel.url}{path}", good)[0] == 200
    assert get(f"{tel.url}/health/live")[0] == 200


def test_bearer_token_and_closed_live(start_telemetry: Callable[..., Telemetry]) -> None:
    token = "t" * 32
    tel = start_telemetry(server={"auth": {"bearer_token": token,
                                           "allow_unauthenticated_live": False}})
    assert get(f"{tel.url}/health/live")[0] == 401
    assert get(f"{tel.url}/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    assert get(f"{tel.url}/metrics", {"Authorization": f"Bearer {token}"})[0] == 200


def test_tls_with_a_self_signed_certificate(
    tls_telemetry: tuple[Telemetry, ssl.SSLContext],
) -> None:
    tel, client = tls_telemetry
    assert tel.url.startswith("https://")
    status, _, body = get(f"{tel.url}/metrics", context=client)
    assert status == 200 and b"yolo_handoffs_total" in body
    with pytest.raises(urllib.error.URLError):  # an untrusting client refuses the cert
        get(f"{tel.url}/metrics", context=ssl.create_default_context())


def test_tls_with_a_missing_certificate_is_a_clear_error(
    start_telemetry: Callable[..., Telemetry], tmp_path,
) -> None:
    with pytest.raises(ConfigError, match=r"server\.tls: cannot load"):
        start_telemetry(server={"tls": {"cert_file": str(tmp_path / "no.pem"),
                                        "key_file": str(tmp_path / "no.key")}})


def test_stop_is_idempotent_and_context_manager_works() -> None:
    import telemetry

    with telemetry.start({"server": {"port": 0}}) as tel:
        url = tel.url
        send("safety_blocked", agent="a", rule="r")
        assert tel.snapshot()[0].safety_blocks == 1
    assert tel.state == "stopped"
    tel.stop()
    with pytest.raises(OSError):
        get(f"{url}/health/live")
    send("safety_blocked", agent="a", rule="r")  # after stop: not counted, not raised
    assert tel.snapshot()[0].safety_blocks == 1
