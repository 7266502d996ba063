"""No prompt or context text leaves the process, and /debug/* is behind the auth.

An orchestrator may pass anything as extra keyword fields of a signal (the prompt it
sent, the context it built) and attach exceptions whose message quotes them. None of
it may reach /metrics, /health, /debug/slow, the StatsD datagrams or any span, span
attribute, event or resource received by a real collector, unless
``tracing.capture_content`` is on, and then only the exception message.
"""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from telemetry import Telemetry
from tests.conftest import send
from tests.support.backends import rotel_receiver, statsd_daemon

PROMPT = "SECRET-PROMPT-123"
CONTEXT = "SECRET-CONTEXT-456"
IN_EXCEPTION = "SECRET-EXCEPTION-789"
EXTRA_ONLY = (PROMPT, CONTEXT)
ALL_SECRETS = (*EXTRA_ONLY, IN_EXCEPTION)


class LeakyToolError(RuntimeError):
    """An exception whose message quotes the prompt, as real tool errors often do."""


def leaky_workflow(workflow_id: str) -> None:
    """A workflow whose every signal also carries prompt and context text."""
    extra = {"prompt": f"Summarise: {PROMPT}", "context": [CONTEXT, {"text": CONTEXT}],
             "messages": [{"role": "user", "content": PROMPT}]}
    send("workflow_started", workflow_id=workflow_id, workflow_type="greenfield", **extra)
    send("agent_activated", agent="dev", workflow_id=workflow_id, **extra)
    send("context_updated", agent="dev", items=3, tokens=1200, workflow_id=workflow_id,
         content=CONTEXT, **extra)
    send("decision_made", agent="dev", decision_type="implement", duration_s=0.4,
         workflow_id=workflow_id, reasoning=f"because {PROMPT}", **extra)
    send("error_occurred", agent="dev", error_type="ToolTimeout", workflow_id=workflow_id,
         exception=LeakyToolError(f"tool failed on {IN_EXCEPTION}"), **extra)
    send("safety_blocked", agent="dev", rule="no_secret_in_output", workflow_id=workflow_id,
         blocked_output=PROMPT, **extra)
    send("handoff_started", from_agent="dev", to_agent="qa", workflow_id=workflow_id, **extra)
    send("handoff_completed", from_agent="dev", to_agent="qa", duration_s=0.2,
         workflow_id=workflow_id, payload={"prompt": PROMPT}, **extra)
    send("state_saved", duration_s=0.01, size_bytes=2048, workflow_id=workflow_id, **extra)
    send("agent_deactivated", agent="dev", workflow_id=workflow_id, **extra)
    send("workflow_completed", workflow_id=workflow_id, duration_s=3.0, **extra)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def config(rotel: Any, daemon: Any, capture_content: bool) -> dict[str, Any]:
    return {
        "exporters": {
            "otlp": {"enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600},
            "statsd": {"enabled": True, "port": daemon.port, "flush_interval_s": 3600,
                       "flavor": "dogstatsd"},  # tags: label values travel in the lines
        },
        "tracing": {"capture_content": capture_content},
        "debug": {"enabled": True, "slow": {"enabled": True, "threshold_s": 0.1,
                                            "operations": ["decision", "handoff"]}},
    }


@pytest.mark.backend
@pytest.mark.parametrize("capture_content", [False, True])
def test_prompt_and_context_text_reach_no_output(
        tmp_path: Path, start_telemetry, caplog: pytest.LogCaptureFixture,
        capture_content: bool) -> None:
    caplog.set_level(logging.DEBUG)
    with rotel_receiver(tmp_path) as rotel, statsd_daemon(tmp_path) as daemon:
        tel: Telemetry = start_telemetry(config(rotel, daemon, capture_content))
        leaky_workflow("wf-secret-1")
        outputs = {path: fetch(f"{tel.url}{path}")[1]
                   for path in ("/metrics", "/health", "/health/ready", "/debug/slow")}
        tel.stop()
        spans = rotel.wait_for_spans(count=5)  # workflow, agent, decision, handoff, save
        rotel.wait_for_metrics(lambda p: p["name"] == "yolo.handoffs")
        outputs["rotel"] = rotel.output()  # the raw record of everything received
        daemon.wait_for(lambda d: any("yolo.handoffs" in line for line in d.lines()))
        outputs["statsd"] = "\n".join(daemon.lines())
    outputs["logs"] = caplog.text

    # the outputs are not vacuous: the workflow is there, error and block included
    assert 'yolo_handoffs_total{from_agent="dev",to_agent="qa"} 1.0' in outputs["/metrics"]
    assert "yolo.safety_blocked" in outputs["rotel"]
    assert "LeakyToolError" in outputs["rotel"]
    agent_span = next(s for s in spans if s["name"] == "invoke_agent dev")
    exception = next(e for e in agent_span["events"] if e["name"] == "exception")
    assert "no_secret_in_output" in outputs["statsd"]
    for where, text in outputs.items():
        for secret in EXTRA_ONLY:  # extra fields never go anywhere
            assert secret not in text, f"{secret} leaked into {where}"
        if where != "rotel" or not capture_content:
            assert IN_EXCEPTION not in text, f"the exception message leaked into {where}"
    if capture_content:  # the switch works, and it is the only way in
        assert IN_EXCEPTION in exception["attributes"]["exception.message"]
    else:
        assert "exception.message" not in exception["attributes"]
        assert exception["attributes"]["exception.type"].endswith("LeakyToolError")


def test_debug_endpoints_need_the_credentials_when_auth_is_configured(
        start_telemetry) -> None:
    tel = start_telemetry(
        server={"auth": {"basic": {"username": "ops", "password": "pa55word"}}},
        debug={"enabled": True, "slow": {"enabled": True, "threshold_s": 0.1}})
    good = {"Authorization": "Basic " + base64.b64encode(b"ops:pa55word").decode()}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:guess").decode()}
    token = {"Authorization": "Bearer " + "x" * 32}
    for path in ("/debug/profile?seconds=0.05", "/debug/slow", "/debug/slow/1"):
        for headers in (None, wrong, token):
            status, body = fetch(f"{tel.url}{path}", headers)
            assert status == 401, (path, headers, status)
            assert "profile" not in body and "captures" not in body
    assert fetch(f"{tel.url}/debug/profile?seconds=0.05", good)[0] == 200
    assert fetch(f"{tel.url}/debug/slow", good)[0] == 200
    assert fetch(f"{tel.url}/debug/slow/1", good)[0] == 404  # authorised: no such capture
    assert fetch(f"{tel.url}/health/live")[0] == 200  # only the probe stays open
