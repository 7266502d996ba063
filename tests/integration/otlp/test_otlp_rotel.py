"""OTLP against a real receiver (rotel): spans and metrics as a collector sees them."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from telemetry import Telemetry
from telemetry import catalogue as cat
from telemetry.catalogue import Kind
from telemetry.cli.simulator import ReferenceOrchestrator
from telemetry.model import HistogramValue
from telemetry.runtime import package_version
from tests.conftest import send
from tests.support import ROOT
from tests.support.backends import RotelReceiver, rotel_receiver
from tests.support.backends.rotel import sent_over_otlp

pytestmark = pytest.mark.backend

#: Sampled at collection: they differ between the final export and a later collect()
#: (the time in the current mode runs on).
PROCESS_GAUGES = {"yolo.process.memory.resident", "yolo.process.cpu", "yolo.mode.time"}
#: Counted when the final span batch is answered, which goes out beside the final
#: metrics export: the collector holds the count of the batches before it.
MOVES_IN_THE_FINAL_EXPORT = {"yolo.telemetry.spans.exported"}


@pytest.fixture
def rotel(tmp_path: Path):
    with rotel_receiver(tmp_path) as receiver:
        yield receiver


def endpoint(rotel: RotelReceiver, protocol: str) -> str:
    return rotel.grpc_endpoint if protocol == "grpc" else rotel.http_endpoint


def otlp_config(rotel: RotelReceiver, protocol: str, **tracing: Any) -> dict:
    return {"exporters": {"otlp": {"enabled": True, "protocol": protocol,
                                   "endpoint": endpoint(rotel, protocol),
                                   "interval_s": 3600}},  # only the final export at stop
            "tracing": tracing}


def run(tel_factory, config: dict, workflows: int = 3, seed: int = 11,
        **knobs: Any) -> tuple[Telemetry, ReferenceOrchestrator]:
    tel = tel_factory(config)
    orchestrator = ReferenceOrchestrator(seed=seed, **knobs)
    orchestrator.run(workflows=workflows)
    tel.stop()
    return tel, orchestrator


def expected_span_count(orchestrator: ReferenceOrchestrator) -> int:
    counts = orchestrator.stats.counts_by_signal
    return sum(counts.get(name, 0) for name in (
        "workflow_started", "agent_activated", "decision_made", "handoff_completed",
        "context_refreshed", "state_saved", "state_loaded", "llm_called", "tool_completed"))


def assert_metrics_equal_aggregates(rotel: RotelReceiver, tel: Telemetry) -> int:
    """Every series the aggregator holds arrived with the same value (but counters and
    histograms never recorded in, which are not sent); returns how many."""
    instance = {"service.instance.id": tel.instance_id}
    compared = 0
    for family in tel.aggregator.collect():
        spec = family.spec
        if spec.name in PROCESS_GAUGES or spec.name in MOVES_IN_THE_FINAL_EXPORT:
            continue
        for sample in family.samples:
            if not sent_over_otlp(spec, sample):
                continue
            labels = dict(zip(spec.otlp_attributes, sample.labels, strict=True))
            labels.update(spec.otlp_constant_attributes)
            points = [p for p in rotel.metrics(spec.otlp_name)
                      if p["attributes"] == labels and p["resource"].items() >= instance.items()]
            assert points, f"{spec.otlp_name}{labels} never arrived"
            point = points[-1]
            assert (point["unit"], point["description"]) == (spec.unit, spec.help)
            if spec.kind is not Kind.GAUGE:  # OTLP gauges carry no start time
                assert point["start_time"] == int(sample.created * 1e9)
            if spec.kind is Kind.HISTOGRAM:
                value = sample.value
                assert isinstance(value, HistogramValue)
                assert point["type"] == "Histogram" and point["temporality"] == "CUMULATIVE"
                assert point["bounds"] == list(spec.buckets)
                assert point["bucket_counts"] == list(value.bucket_counts)
                assert point["count"] == value.count
                assert math.isclose(point["sum"], value.sum, rel_tol=1e-9)
            else:
                assert point["type"] == ("Sum" if spec.kind is Kind.COUNTER else "Gauge")
                if spec.kind is Kind.COUNTER:
                    assert point["monotonic"] and point["temporality"] == "CUMULATIVE"
                assert math.isclose(point["value"], sample.value, rel_tol=1e-9), spec.name
            compared += 1
    return compared


def check_span_tree(spans: list[dict], orchestrator: ReferenceOrchestrator) -> None:
    by_id = {span["span_id"]: span for span in spans}
    workflows = [s for s in spans if s["name"] == "invoke_workflow greenfield-fullstack"]
    assert len(workflows) == orchestrator.stats.workflows_started
    for span in spans:
        parent = by_id.get(span["parent_span_id"]) if span["parent_span_id"] else None
        name = span["name"]
        assert span["kind"] == "INTERNAL"
        if name.startswith("invoke_workflow") or name == "state_load":
            # state_loaded is sent before workflow_started: no workflow span to join yet
            assert parent is None, name
            continue
        assert parent is not None, f"{name} has no parent"
        assert parent["trace_id"] == span["trace_id"]
        wf_id = span["attributes"]["gen_ai.conversation.id"]
        if name.startswith(("invoke_agent ", "handoff ", "state_save")):
            assert parent["name"] == "invoke_workflow greenfield-fullstack", name
            assert parent["attributes"]["yolo.workflow.id"] == wf_id
        elif name.startswith(("decision ", "context_refresh ", "chat ", "execute_tool ")):
            assert parent["name"] == f"invoke_agent {span['attributes']['gen_ai.agent.name']}"
        else:
            pytest.fail(f"unexpected span {name}")
    agents = [s for s in spans if s["name"].startswith("invoke_agent ")]
    for span in agents:
        attributes = span["attributes"]
        assert attributes["gen_ai.operation.name"] == "invoke_agent"
        assert span["name"] == f"invoke_agent {attributes['gen_ai.agent.name']}"
        errors = [e for e in span["events"] if e["name"] == "exception"]
        if errors:
            assert span["status_code"] == "ERROR"
            assert errors[0]["attributes"]["exception.type"] == \
                "telemetry.cli.simulator.AgentFailure"
            assert "exception.message" not in errors[0]["attributes"]  # no content by default
            assert attributes["error.type"] == errors[-1]["attributes"]["error.type"]
        else:
            assert span["status_code"] == "UNSET"
    error_events = sum(len([e for e in s["events"] if e["name"] == "exception"]) for s in agents)
    assert error_events == orchestrator.stats.errors
    chats = [s for s in spans if s["name"].startswith("chat ")]
    assert len(chats) == orchestrator.stats.llm_calls
    assert sum(s["attributes"]["gen_ai.usage.input_tokens"]
               + s["attributes"]["gen_ai.usage.output_tokens"] for s in chats) == \
        orchestrator.stats.tokens
    blocks = sum(len([e for e in s["events"] if e["name"] == "yolo.safety_blocked"])
                 for s in agents)
    assert blocks == orchestrator.stats.safety_blocks
    handoffs = [s for s in spans if s["name"].startswith("handoff ")]
    assert len(handoffs) == orchestrator.stats.handoffs
    for span in handoffs:
        attributes = span["attributes"]
        source, target = attributes["yolo.handoff.from_agent"], attributes["yolo.handoff.to_agent"]
        assert span["name"] == f"handoff {source} -> {target}"
        assert attributes["gen_ai.agent.handoff.source.name"] == source
        assert attributes["gen_ai.agent.handoff.target.name"] == target
    outcomes = Counter(s["attributes"]["yolo.workflow.outcome"] for s in workflows)
    assert outcomes == {"completed": orchestrator.stats.workflows_completed,
                        "failed": orchestrator.stats.workflows_failed}
    for span in workflows:
        failed = span["attributes"]["yolo.workflow.outcome"] == "failed"
        assert span["status_code"] == ("ERROR" if failed else "UNSET")
        assert ("error.type" in span["attributes"]) is failed
        assert span["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
        assert span["attributes"]["gen_ai.workflow.name"] == "greenfield-fullstack"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_reference_workflows_arrive_as_spans_and_metrics(rotel: RotelReceiver, start_telemetry,
                                                         protocol: str) -> None:
    tel, orchestrator = run(start_telemetry, otlp_config(rotel, protocol), workflows=4,
                            error_probability=0.3, workflow_failure_probability=0.1,
                            safety_block_probability=0.3)
    assert orchestrator.stats.workflows_failed and orchestrator.stats.workflows_completed
    assert orchestrator.stats.errors and orchestrator.stats.safety_blocks
    expected = expected_span_count(orchestrator)
    spans = rotel.wait_for_spans(count=expected)
    assert len(spans) == expected
    resource = spans[0]["resource"]
    assert resource["service.name"] == "yolo"
    assert resource["service.instance.id"] == tel.instance_id
    assert resource["service.version"] == package_version()
    assert {s["scope"] for s in spans} == {"yolo-telemetry"}
    check_span_tree(spans, orchestrator)
    # the trace ids group each workflow's spans and nothing else
    traces = {s["trace_id"] for s in spans if s["name"].startswith("invoke_workflow")}
    assert len(traces) == orchestrator.stats.workflows_started
    rotel.wait_for_metrics(lambda p: p["name"] == "yolo.handoffs")
    assert assert_metrics_equal_aggregates(rotel, tel) > 20
    # ... and so to the story's snapshot
    agent, system = tel.snapshot()

    def total(name: str, **labels: str) -> float:
        latest = {}
        for point in rotel.metrics(name):
            if point["attributes"].items() >= labels.items():
                latest[tuple(sorted(point["attributes"].items()))] = point["value"]
        return sum(latest.values())

    assert total("yolo.handoffs") == agent.handoffs_total == orchestrator.stats.handoffs
    assert total("yolo.decisions") == agent.decisions_made
    assert total("yolo.errors") == agent.errors_total
    assert total("yolo.workflows", outcome="failed") == system.workflows_failed
    assert total("yolo.state.saves") == system.state_saves_total
    health = tel.health()["checks"]["exporter:otlp"]
    assert health["status"] == "ok" and health["failures"] == 0


def test_sampling_changes_spans_but_not_metrics(rotel: RotelReceiver, start_telemetry) -> None:
    never, _ = run(start_telemetry, otlp_config(rotel, "http/protobuf", sampler_ratio=0.0))
    always, orchestrator = run(start_telemetry, otlp_config(rotel, "http/protobuf",
                                                            sampler_ratio=1.0))
    expected = expected_span_count(orchestrator)
    rotel.wait_for_spans(lambda s: s["resource"]["service.instance.id"] == always.instance_id,
                         count=expected)
    by_instance = Counter(s["resource"]["service.instance.id"] for s in rotel.spans())
    assert by_instance == {always.instance_id: expected}
    # metrics of both runs are complete and equal to their own aggregates
    for tel in (never, always):
        rotel.wait_for_metrics(lambda p, tel=tel: p["name"] == "yolo.workflows" and
                               p["resource"]["service.instance.id"] == tel.instance_id)
        assert assert_metrics_equal_aggregates(rotel, tel) > 20
    assert never.aggregator.value(cat.WORKFLOWS_STARTED) == 3
    assert always.aggregator.value(cat.WORKFLOWS_STARTED) == 3


def _python_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "YOLO_TELEMETRY"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_handoff_payload_continues_the_trace_in_another_process(rotel: RotelReceiver,
                                                                protocol: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "propagation.py"),
         "--endpoint", endpoint(rotel, protocol), "--protocol", protocol],
        capture_output=True, text=True, timeout=120, env=_python_env(), check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    a, b = (next(line for line in lines if line["process"] == p) for p in "AB")
    assert a["instance_id"] != b["instance_id"]
    assert a["traceparent"] == b["traceparent"]
    _, trace_id, parent_id, _ = a["traceparent"].split("-")
    spans = rotel.wait_for_spans(count=6)
    assert {s["trace_id"] for s in spans} == {trace_id}
    named = {s["name"]: s for s in spans}
    assert set(named) == {"invoke_workflow cross-process", "invoke_agent pm",
                          "decision prioritise", "handoff pm -> dev", "invoke_agent dev",
                          "decision implement"}

    def instance(name: str) -> str:
        return named[name]["resource"]["service.instance.id"]

    assert {instance(n) for n in ("invoke_workflow cross-process", "handoff pm -> dev")} == \
        {a["instance_id"]}
    assert {instance(n) for n in ("invoke_agent dev", "decision implement")} == {b["instance_id"]}
    handoff, dev = named["handoff pm -> dev"], named["invoke_agent dev"]
    assert handoff["span_id"] == parent_id
    assert dev["parent_span_id"] == handoff["span_id"]
    assert named["decision implement"]["parent_span_id"] == dev["span_id"]
    assert handoff["parent_span_id"] == named["invoke_workflow cross-process"]["span_id"]
    assert dev["attributes"]["gen_ai.conversation.id"] == a["workflow_id"]


def test_yaml_switch_and_otel_environment_are_enough(rotel: RotelReceiver,
                                                     tmp_path: Path) -> None:
    """`exporters.otlp.enabled: true` in a config file plus the standard OTEL_* variables:
    the demo sends traces and metrics with no code change."""
    config = tmp_path / "telemetry.yaml"
    config.write_text("server: {enabled: false}\nexporters:\n  otlp:\n    enabled: true\n")
    done = subprocess.run(
        [sys.executable, "-m", "telemetry", "demo", "--config", str(config), "--workflows", "1",
         "--time-scale", "0", "--seed", "3", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
        env=_python_env(OTEL_EXPORTER_OTLP_ENDPOINT=rotel.grpc_endpoint,
                        OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_SERVICE_NAME="yolo-demo"))
    assert done.returncode == 0, done.stderr
    spans = rotel.wait_for_spans(lambda s: s["name"].startswith("invoke_workflow"))
    assert spans[0]["resource"]["service.name"] == "yolo-demo"
    points = rotel.wait_for_metrics(lambda p: p["name"] == "yolo.workflows")
    assert points[-1]["value"] == 1


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_delta_temporality_and_integer_sums_arrive(rotel: RotelReceiver, start_telemetry,
                                                   protocol: str) -> None:
    """OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta, as rotel reads it:
    counters and histograms as the change since the last export, counts as ints."""
    config = otlp_config(rotel, protocol)
    config["exporters"]["otlp"]["temporality_preference"] = "delta"
    tel = start_telemetry(config)
    exporter = tel.exporters["otlp"]
    handoff = cat.HANDOFFS.otlp_name
    for sends, total in ((2, 2), (1, 3)):
        for _ in range(sends):
            tel_signal_handoff()
        assert exporter.export_metrics()
        points = rotel.wait_for_metrics(
            lambda p: p["name"] == handoff and
            p["resource"].get("service.instance.id") == tel.instance_id,
            count=2 if total == 3 else 1)
    first, second = points[:2]
    assert (first["temporality"], second["temporality"]) == ("DELTA", "DELTA")
    assert (first["value"], second["value"]) == (2, 1)
    assert isinstance(second["value"], int)
    assert second["start_time"] == first["time"]
    [duration] = [p for p in rotel.metrics(cat.HANDOFF_DURATION.otlp_name)
                  if p["time"] == second["time"]]
    assert (duration["temporality"], duration["count"]) == ("DELTA", 1)


def tel_signal_handoff() -> None:
    import blinker

    blinker.signal("yolo.handoff_completed").send(
        None, from_agent="pm", to_agent="dev", duration_s=0.25, workflow_id="wf-delta")


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_llm_and_tool_calls_arrive_under_the_genai_names(rotel: RotelReceiver, start_telemetry,
                                                         protocol: str) -> None:
    tel = start_telemetry(otlp_config(rotel, protocol, genai_provider="anthropic"))
    send("workflow_started", workflow_id="wf")
    send("agent_activated", agent="dev", workflow_id="wf")
    send("llm_called", agent="dev", model="claude-sonnet", duration_s=1.5, input_tokens=1200,
         output_tokens=300, workflow_id="wf")
    send("tool_completed", agent="dev", tool="pytest", duration_s=2.0, call_key="k",
         error_type="Exit1", workflow_id="wf")
    send("agent_deactivated", agent="dev", workflow_id="wf")
    send("workflow_completed", workflow_id="wf", duration_s=5.0)
    tel.stop()
    chat = {"gen_ai.agent.name": "dev", "gen_ai.request.model": "claude-sonnet",
            "gen_ai.operation.name": "chat"}
    rotel.wait_for_metrics(lambda p: p["name"] == "gen_ai.client.token.usage")
    tokens = {p["attributes"]["gen_ai.token.type"]: p for p in
              rotel.metrics("gen_ai.client.token.usage")}
    assert tokens.keys() == {"input", "output"}
    assert tokens["input"]["attributes"] == {**chat, "gen_ai.token.type": "input"}
    assert (tokens["input"]["sum"], tokens["output"]["sum"]) == (1200, 300)
    (duration,) = {tuple(sorted(p["attributes"].items())): p for p in
                   rotel.metrics("gen_ai.client.operation.duration")}.values()
    assert duration["attributes"] == chat and duration["unit"] == "s"
    assert rotel.metrics("yolo.llm.token.usage") == []
    assert rotel.last_point("yolo.tool.errors")["attributes"] == {
        "agent": "dev", "tool": "pytest", "error_type": "Exit1"}
    assert assert_metrics_equal_aggregates(rotel, tel) > 10
    spans = {s["name"]: s for s in rotel.wait_for_spans(count=4)}
    assert spans["chat claude-sonnet"]["attributes"]["gen_ai.usage.input_tokens"] == 1200
    assert spans["chat claude-sonnet"]["attributes"]["gen_ai.provider.name"] == "anthropic"
    tool = spans["execute_tool pytest"]["attributes"]
    assert tool["gen_ai.tool.name"] == "pytest" and tool["error.type"] == "Exit1"
    assert "k" not in tool.values()
