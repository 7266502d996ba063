"""Exemplars link metrics to traces at real backends: Prometheus with exemplar storage
returns our trace ids for the handoff duration histogram, and rotel receives them in
the OTLP histogram points."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from telemetry.cli.simulator import ReferenceOrchestrator
from tests.integration.otlp.test_otlp_rotel import otlp_config
from tests.support.backends import (
    RotelReceiver,
    prometheus_server,
    rotel_receiver,
)

pytestmark = pytest.mark.backend


@pytest.fixture
def rotel(tmp_path: Path) -> Iterator[RotelReceiver]:
    (tmp_path / "rotel").mkdir()
    with rotel_receiver(tmp_path / "rotel") as receiver:
        yield receiver


def test_prometheus_returns_our_trace_ids_from_query_exemplars(
        rotel: RotelReceiver, start_telemetry, tmp_path: Path) -> None:
    started = time.time()
    (tmp_path / "prometheus").mkdir()
    tel = start_telemetry(otlp_config(rotel, "http/protobuf"))
    ReferenceOrchestrator(seed=11).run(workflows=3)
    with prometheus_server(tmp_path / "prometheus", [f"127.0.0.1:{tel.server.port}"],
                           extra_args=["--enable-feature=exemplar-storage"]) as prometheus:
        prometheus.wait_for_targets_up(1)

        def exemplars() -> list[dict]:
            data = prometheus.api("query_exemplars", query="yolo_handoff_duration_seconds_bucket",
                                  start=started - 60, end=time.time() + 60)
            return [e for series in data for e in series["exemplars"]]

        found = prometheus.wait_for(exemplars)
    tel.stop()
    trace_ids = {e["labels"]["trace_id"] for e in found}
    span_ids = {e["labels"]["span_id"] for e in found}
    spans = rotel.wait_for_spans(lambda s: s["name"] == "invoke_workflow greenfield-fullstack",
                                 count=3)
    # handoffs are signalled between agents: the workflow span is current then
    assert trace_ids <= {s["trace_id"] for s in spans}
    assert span_ids <= {s["span_id"] for s in spans}
    assert all(float(e["value"]) > 0 for e in found)
    assert all(started - 1 <= float(e["timestamp"]) <= time.time() for e in found)


def test_otlp_histogram_points_carry_the_exemplars(rotel: RotelReceiver,
                                                   start_telemetry) -> None:
    tel = start_telemetry(otlp_config(rotel, "grpc"))
    ReferenceOrchestrator(seed=11).run(workflows=2)
    tel.stop()
    workflows = {s["trace_id"] for s in rotel.wait_for_spans(
        lambda s: s["name"] == "invoke_workflow greenfield-fullstack", count=2)}
    [point] = rotel.wait_for_metrics(lambda p: p["name"] == "yolo.handoff.duration"
                                     and p.get("exemplars"), count=1)[:1]
    assert {e["trace_id"] for e in point["exemplars"]} <= workflows
