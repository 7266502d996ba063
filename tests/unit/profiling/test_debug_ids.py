"""/debug/slow/<id> with ids that are not plain numbers: 404, and nothing logged."""

from __future__ import annotations

import logging

import pytest

from tests.unit.serving.test_hostile_clients import raw_request, status_of


@pytest.mark.parametrize("capture_id", [
    "\u00b2".encode("latin-1"),  # superscript two: str.isdigit() says yes, int() says no
    "\u00b2".encode(),  # the same, as UTF-8
    "\u0663".encode(),  # Arabic-Indic three
    b"7" * 5000,  # int() refuses more than 4300 digits
    b"12345678901234567890123",  # a number, but no capture ever has such an id
    b"-1", b"1.0", b"%32",
])
def test_odd_capture_ids_are_404_without_a_traceback(start_telemetry, caplog,
                                                     capture_id: bytes) -> None:
    tel = start_telemetry(debug={"enabled": True, "slow": {"enabled": True}})
    with caplog.at_level(logging.INFO):
        answer = raw_request(tel.server.port, b"GET /debug/slow/" + capture_id +
                             b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 404, answer[:200]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_plain_unknown_id_is_still_404(start_telemetry) -> None:
    tel = start_telemetry(debug={"enabled": True, "slow": {"enabled": True}})
    answer = raw_request(tel.server.port, b"GET /debug/slow/42 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                          b"Connection: close\r\n\r\n")
    assert status_of(answer) == 404
    assert b"only the last 20 are kept" in answer
