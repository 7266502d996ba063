"""Arbitrary payloads against a running Telemetry with every exporter on real backends.

tests/test_bad_input.py checks the aggregator alone. Here the same hypothesis
payloads go to a started Telemetry (tracer attached, StatsD and OTLP exporters
running): no exception reaches the sender, each event is accepted or counted as
invalid, and afterwards every consumer still accepts what it is given: promtool
passes the /metrics scrape, /health is a valid document, the StatsD daemon saw no
bad line, rotel accepted the metrics and spans, and no exporter is failing.
"""

from __future__ import annotations

import json
from pathlib import Path

import blinker
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry import catalogue as cat
from tests.conftest import send
from tests.support.backends import promtool_check_metrics, rotel_receiver, statsd_daemon
from tests.support.faults import get_json, get_text, record
from tests.unit.core.test_bad_input import payloads

pytestmark = pytest.mark.backend


def test_arbitrary_payloads_leave_every_backend_consistent(tmp_path: Path,
                                                           start_telemetry) -> None:
    with rotel_receiver(tmp_path) as rotel, statsd_daemon(tmp_path) as daemon:
        tel = start_telemetry({"exporters": {
            "otlp": {"enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600},
            "statsd": {"enabled": True, "port": daemon.port, "flush_interval_s": 3600,
                       "flavor": "dogstatsd"}}})
        sent = {"events": 0}

        @settings(max_examples=300, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow,
                                         HealthCheck.function_scoped_fixture])
        @given(st.lists(payloads(), min_size=1, max_size=10))
        def send_all(events: list[tuple[str, dict]]) -> None:
            for name, fields in events:
                _, before = tel.snapshot()
                blinker.signal(name).send(None, **fields)  # would raise into hypothesis
                _, after = tel.snapshot()
                accepted = after.events_total - before.events_total
                invalid = after.invalid_events_total - before.invalid_events_total
                assert (accepted, invalid) in ((1, 0), (0, 1))
                sent["events"] += 1

        send_all()
        _, system = tel.snapshot()
        assert system.events_total + system.invalid_events_total == sent["events"]

        text = get_text(f"{tel.url}/metrics")
        ok, output = promtool_check_metrics(text)
        assert ok, output
        status, document = get_json(f"{tel.url}/health")
        assert status in (200, 503)  # 503 if junk drove an agent's context to critical
        json.dumps(document)
        assert tel.exporters["statsd"].flush(10)
        assert tel.exporters["otlp"].flush(10)
        checks = tel.health()["checks"]
        assert checks["exporter:statsd"]["status"] == "ok", checks["exporter:statsd"]
        assert checks["exporter:otlp"]["status"] == "ok", checks["exporter:otlp"]
        daemon.wait_for_metrics_received(tel.exporters["statsd"].lines_sent)
        stats = daemon.stats()
        assert stats["bad_lines_seen"] == 0
        tel.stop()
        # the tracer and the other listeners never failed on an accepted event
        assert tel.aggregator.value(cat.DROPPED, ("listener", "exception")) == 0
    record("hypothesis payloads end to end", events=sent["events"],
           accepted=system.events_total, invalid=system.invalid_events_total,
           invalid_reasons=len(tel.aggregator.invalid_events()),
           statsd_lines=stats["metrics_received"], exposition_bytes=len(text))


HUGE = "h" * 1_000_000
SURROGATE = "fs-\udcff-name"  # what os.fsdecode makes of an undecodable byte


def test_hostile_names_and_times_reach_every_backend_safely(
        tmp_path: Path, start_telemetry, caplog: pytest.LogCaptureFixture) -> None:
    """Values the contract accepts but no wire format can carry as they are: a 1 MB
    name, a lone surrogate, a start before the epoch, a timestamp past 2262. Each
    used to cost a whole span batch (HTTP 413, an encoding error) or every later
    scrape (a surrogate in a label value made /metrics answer 500)."""
    with rotel_receiver(tmp_path) as rotel, statsd_daemon(tmp_path) as daemon:
        # A window wide enough to accept the extreme timestamps below: spans must
        # still carry them within what OTLP can encode.
        tel = start_telemetry({"limits": {"timestamp_window_s": 1e13}, "exporters": {
            "otlp": {"enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600},
            "statsd": {"enabled": True, "port": daemon.port, "flush_interval_s": 3600,
                       "flavor": "dogstatsd"}}})
        for number in range(30):
            send("decision_made", agent=HUGE, decision_type=HUGE, duration_s=0.1,
                 workflow_id=f"{HUGE}{number}")
        send("handoff_completed", from_agent=SURROGATE, to_agent="qa", duration_s=0.2)
        send("decision_made", agent="early", decision_type="d", duration_s=5.0, timestamp=1.0)
        send("decision_made", agent="late", decision_type="d", duration_s=1.0,
             timestamp=1e12)
        text = get_text(f"{tel.url}/metrics")
        ok, output = promtool_check_metrics(text)
        assert ok, output
        assert tel.exporters["statsd"].flush(10)
        assert tel.exporters["otlp"].flush(10), tel.exporters["otlp"].health()
        spans = rotel.wait_for_spans(count=33)
        daemon.wait_for_metrics_received(tel.exporters["statsd"].lines_sent)
        assert daemon.stats()["bad_lines_seen"] == 0
        tel.stop()  # while the backends still answer
    cap = 128  # limits.max_label_length
    for span in spans:
        assert len(span["name"]) <= len("decision ") + cap
        for value in span["attributes"].values():
            assert not isinstance(value, str) or len(value) <= cap
    assert 'from_agent="fs-?-name"' in text
    names = {span["attributes"].get("gen_ai.agent.name") for span in spans}
    assert "fs-?-name" in {span["attributes"].get("yolo.handoff.from_agent") for span in spans}
    assert {"early", "late"} <= names
    assert "Failed to encode" not in caplog.text


def test_an_exception_message_that_cannot_be_encoded_costs_no_batch(
        tmp_path: Path, start_telemetry) -> None:
    """With ``tracing.capture_content`` the exception message goes into the span; an
    OSError about an undecodable file name carries a lone surrogate."""
    with rotel_receiver(tmp_path) as rotel:
        tel = start_telemetry({"tracing": {"capture_content": True}, "exporters": {"otlp": {
            "enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600}}})
        send("agent_activated", agent="dev", workflow_id="wf-1")
        send("error_occurred", agent="dev", error_type="OSError", workflow_id="wf-1",
             exception=OSError(f"cannot open /tmp/{SURROGATE}"))
        send("agent_deactivated", agent="dev", workflow_id="wf-1")
        assert tel.exporters["otlp"].flush(10), tel.exporters["otlp"].health()
        span = rotel.wait_for_spans(lambda s: s["name"] == "invoke_agent dev")[0]
        tel.stop()
    message = span["events"][0]["attributes"]["exception.message"]
    assert message == "cannot open /tmp/fs-?-name"
