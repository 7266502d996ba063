"""``yolo-telemetry top`` with the server's TLS and auth options: a server on HTTPS
with a throwaway CA's certificate, and bearer or basic credentials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from telemetry import Telemetry, signals
from telemetry.top.fetch import Credentials
from telemetry.top.scrape import ScrapeSource

TOKEN = "a-bearer-token-of-some-length"


@pytest.fixture
def secured(start_telemetry: Callable[..., Telemetry], tmp_path: Path) -> tuple[Telemetry, str]:
    """Telemetry on HTTPS with bearer and basic auth; and the CA file that trusts it."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    authority.cert_pem.write_to_path(str(ca_file))
    tel = start_telemetry(server={
        "tls": {"cert_file": str(cert_file), "key_file": str(key_file)},
        "auth": {"bearer_token": TOKEN, "basic": {"username": "op", "password": "pw"}}})
    signals.decision_made.send(None, agent="dev", decision_type="plan", duration_s=0.1)
    return tel, str(ca_file)


@pytest.mark.parametrize("credentials", [
    Credentials(token=TOKEN), Credentials(user="op:pw")], ids=["bearer", "basic"])
def test_credentials_and_the_ca_file_read_a_secured_server(
        secured: tuple[Telemetry, str], credentials: Credentials) -> None:
    tel, ca_file = secured
    assert tel.url.startswith("https://")
    given = Credentials(credentials.token, credentials.user, ca_file)
    (reading,) = ScrapeSource([tel.url], given, timeout_s=5).read()
    assert reading.error is None and reading.by("yolo_decisions_total", "agent") == {"dev": 1}
    assert reading.health is not None and reading.health["status"] in ("healthy", "degraded")


def test_without_credentials_or_trust_the_reading_says_why(
        secured: tuple[Telemetry, str]) -> None:
    tel, ca_file = secured
    (no_auth,) = ScrapeSource([tel.url], Credentials(cafile=ca_file), timeout_s=5).read()
    assert not no_auth.ok and "401: credentials needed" in (no_auth.error or "")
    (no_trust,) = ScrapeSource([tel.url], Credentials(token=TOKEN), timeout_s=5).read()
    assert not no_trust.ok and "CERTIFICATE_VERIFY_FAILED" in (no_trust.error or "")
