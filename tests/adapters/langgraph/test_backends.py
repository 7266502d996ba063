"""A LangGraph application, instrumented, as operators see it: /metrics, /health, the
in-process alerts, a real Prometheus with the generated rules, and spans at a real
OTLP receiver (rotel). The three-node loop must show as handoff loops and fire
HandoffLoop; no prompt, tool input or output may reach any of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from opentelemetry.sdk.trace import TracerProvider

from telemetry import Telemetry
from telemetry.artefacts.render import render
from tests.adapters.langgraph.graphs import (
    ANSWER_TURN,
    SECRETS,
    TOOL_TURN,
    loop_graph,
    loop_input,
)
from tests.adapters.support import assert_none_of, scrape, value
from tests.support.backends import prometheus_server, rotel_receiver
from tests.support.faults import get_json

pytestmark = pytest.mark.backend

MODEL = {"agent": "researcher", "model": "GenericFakeChatModel"}


def test_metrics_health_and_the_in_process_handoff_loop_alert(
        instrumented, start_telemetry: Callable[..., Telemetry]) -> None:
    tel = start_telemetry({"alerting": {"evaluation_interval_s": 3600}})
    assert tel.alerting is not None
    loop_graph(rounds=2).invoke(loop_input())  # one loop back to each agent
    tel.alerting.evaluate()
    assert not [i for i in tel.alerting.firing() if i.name == "HandoffLoop"]
    loop_graph(rounds=4).invoke(loop_input())  # three more: HandoffLoop (>= 3 in 10m)
    tel.alerting.evaluate()

    text, series = scrape(tel)
    assert value(series, "yolo_handoffs_total", from_agent="planner", to_agent="researcher") == 6
    assert value(series, "yolo_handoffs_total", from_agent="reviewer", to_agent="planner") == 4
    assert value(series, "yolo_handoff_loops_total", agent="planner") == 4
    assert value(series, "yolo_workflows_total", outcome="completed") == 2
    assert value(series, "yolo_agents_active") == 0
    assert value(series, "yolo_llm_calls_total", **MODEL) == 6
    inputs = 2 * TOOL_TURN[0] + 4 * ANSWER_TURN[0]
    outputs = 2 * TOOL_TURN[1] + 4 * ANSWER_TURN[1]
    assert value(series, "yolo_llm_token_usage_sum", **MODEL, token_type="input") == inputs
    assert value(series, "yolo_llm_token_usage_sum", **MODEL, token_type="output") == outputs
    assert value(series, "yolo_llm_token_usage_sum", **MODEL,
                 token_type="cached_input") == 2 * TOOL_TURN[2]
    assert value(series, "yolo_tool_calls_total", agent="researcher", tool="lookup") == 2
    assert value(series, "yolo_telemetry_invalid_events_total") in (None, 0)

    firing = {i.labels["agent"] for i in tel.alerting.firing() if i.name == "HandoffLoop"}
    assert "planner" in firing
    status, health = get_json(f"{tel.url}/health")
    assert status == 200 and health["agents_active"] == 0
    alerts = health["checks"]["alerts"]["firing"]
    assert {"HandoffLoop"} <= {alert["alertname"] for alert in alerts}
    assert_none_of(SECRETS, text, json.dumps(health))


def test_interrupt_resume_and_checkpoints_in_the_metrics(
        start_telemetry: Callable[..., Telemetry]) -> None:
    from telemetry.adapters import langgraph as adapter

    tel = start_telemetry()
    saver = InMemorySaver()
    with adapter.instrument(checkpointers=[saver]):
        graph = loop_graph(rounds=1, interrupt_last=True, checkpointer=saver)
        config = {"configurable": {"thread_id": "ticket-7"}}
        graph.invoke(loop_input(), config)
        _, paused = scrape(tel)
        graph.invoke(Command(resume="approved"), config)
        _, resumed = scrape(tel)

    assert value(paused, "yolo_mode", mode="paused") == 1
    assert value(resumed, "yolo_mode", mode="active") == 1
    assert value(resumed, "yolo_mode", mode="paused") == 0
    saves = value(resumed, "yolo_state_saves_total")
    assert saves is not None and saves == len(list(saver.list(config)))
    assert (value(resumed, "yolo_state_last_save_timestamp_seconds") or 0) > 0
    assert (value(resumed, "yolo_state_file_size_bytes") or 0) > 0
    status, health = get_json(f"{tel.url}/health")
    assert status == 200 and health["mode"] == "active"


def test_a_real_prometheus_fires_handoff_loop_from_the_generated_rule(
        instrumented, start_telemetry: Callable[..., Telemetry], tmp_path: Path) -> None:
    tel = start_telemetry()
    rules = tmp_path / "rules.yml"
    rules.write_text(render("alerts", {}))  # the built-in HandoffLoop: >= 3 in 10m
    with prometheus_server(tmp_path, [f"127.0.0.1:{tel.server.port}"],
                           rule_files=[rules]) as prometheus:
        prometheus.wait_for_targets_up(1)
        loop_graph(rounds=2).invoke(loop_input())  # the loop counter's series appear
        prometheus.wait_for('yolo_handoff_loops_total{agent="planner"} == 1')
        assert not [a for a in prometheus.alerts() if a["labels"]["alertname"] == "HandoffLoop"]
        loop_graph(rounds=4).invoke(loop_input())
        prometheus.wait_for(lambda: [
            a for a in prometheus.alerts() if a["state"] == "firing"
            and a["labels"] == {**a["labels"], "alertname": "HandoffLoop", "agent": "planner"}])


def test_spans_at_a_real_otlp_receiver_join_the_callers_trace(
        instrumented, start_telemetry: Callable[..., Telemetry], tmp_path: Path) -> None:
    with rotel_receiver(tmp_path) as rotel:
        tel = start_telemetry({"exporters": {"otlp": {
            "enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600}}})
        request = TracerProvider().get_tracer("web-app")
        with request.start_as_current_span("POST /research") as outer:
            loop_graph(rounds=2).invoke(loop_input())  # inside a traced request
        tel.stop()
        expected = 1 + 6 + 5 + 2 + 1  # workflow, agents, handoffs, chats, tool
        spans = rotel.wait_for_spans(count=expected)
        output = rotel.output()
    assert len(spans) == expected
    by_id = {span["span_id"]: span for span in spans}
    names = sorted(span["name"] for span in spans)
    assert names.count("invoke_workflow LangGraph") == 1
    assert names.count("invoke_agent researcher") == 2
    assert names.count("handoff reviewer -> planner") == 1
    # one trace: the request's, our workflow span under the request's span
    request_context = outer.get_span_context()
    assert {span["trace_id"] for span in spans} == {f"{request_context.trace_id:032x}"}
    (workflow,) = [s for s in spans if s["name"] == "invoke_workflow LangGraph"]
    assert workflow["parent_span_id"] == f"{request_context.span_id:016x}"

    chats = [s for s in spans if s["name"] == "chat GenericFakeChatModel"]
    assert len(chats) == 2
    for chat in chats:
        assert by_id[chat["parent_span_id"]]["name"] == "invoke_agent researcher"
        attributes: dict[str, Any] = chat["attributes"]
        assert attributes["gen_ai.usage.input_tokens"] in (TOOL_TURN[0], ANSWER_TURN[0])
    (tool,) = [s for s in spans if s["name"] == "execute_tool lookup"]
    assert by_id[tool["parent_span_id"]]["name"] == "invoke_agent researcher"
    assert_none_of(SECRETS, output)
