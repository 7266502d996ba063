"""The export path on the installed OpenTelemetry SDK: the fast path where the SDK has
what it needs (1.45.1 and later), else the SDK's own export, which still sends every
span and metric, is logged once at start-up and is shown in /health. .ci/otlp_sdk_floor.sh
runs this file on the otlp extra's floor (1.44), where the fallback is the real one."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters.otlp.fastpath import sdk_path
from exporters.otlp.fastpath.metric_http import FastHttpMetricExporter
from exporters.otlp.fastpath.span_http import FastHttpSpanExporter
from tests.conftest import send
from tests.support.http_sink import Collector
from tests.unit.exporters.otlp import test_fidelity
from tests.unit.exporters.otlp.test_fidelity import handoff, metric_requests

collector = test_fidelity.collector  # the fixtures: a sink, and a started OTLP exporter
started = test_fidelity.started


def span_names(collector: Collector) -> set[str]:
    return {span.name for path, _, body in collector.requests if path == "/v1/traces"
            for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans
            for scope_spans in resource_spans.scope_spans for span in scope_spans.spans}


def run_a_workflow(exporter: Any) -> None:
    send("workflow_started", workflow_id="wf-1", workflow_type="t")
    handoff()
    send("workflow_completed", workflow_id="wf-1", duration_s=1.0)
    assert exporter.flush(5.0)


@pytest.fixture(autouse=True)
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk_path, "_logged", set())


def test_the_installed_sdk_takes_the_path_it_allows_and_health_says_which(
        started: Any, collector: Collector, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="telemetry.exporters.otlp"):
        exporter = started()
        run_a_workflow(exporter)
    health = exporter.health()
    expected = "fast" if sdk_path.http_client_available() else "sdk"
    assert health["metrics"]["export_path"] == health["traces"]["export_path"] == expected
    assert health["status"] == "ok"
    assert metric_requests(collector) and "invoke_workflow t" in span_names(collector)
    logged = [r.getMessage() for r in caplog.records if "SDK's own export" in r.getMessage()]
    if expected == "fast":
        assert "fallback" not in health["traces"] and logged == []
    else:  # the floor: said once per signal, with the SDK's version
        assert sdk_path.sdk_version() in health["traces"]["fallback"]
        assert len(logged) == 2


def test_an_sdk_without_the_http_client_falls_back_to_its_own_export(
        started: Any, collector: Collector, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """What 1.44 does, forced on any SDK: the exporters do not take the fast path."""
    for exporter_class in (FastHttpSpanExporter, FastHttpMetricExporter):
        init = exporter_class.__init__

        def without_client(self: Any, *args: Any, _init: Any = init, **kwargs: Any) -> None:
            _init(self, *args, **kwargs)
            self.fast = False

        monkeypatch.setattr(exporter_class, "__init__", without_client)
    with caplog.at_level(logging.WARNING, logger="telemetry.exporters.otlp"):
        first = started()
        second = started()  # a second start in the process logs nothing new
        run_a_workflow(first)
    for exporter in (first, second):
        health = exporter.health()
        for signal in ("metrics", "traces"):
            assert health[signal]["export_path"] == "sdk"
            assert sdk_path.sdk_version() in health[signal]["fallback"]
    assert first.health()["status"] == "ok"
    assert "invoke_workflow t" in span_names(collector) and metric_requests(collector)
    logged = [r.getMessage() for r in caplog.records if "SDK's own export" in r.getMessage()]
    assert len(logged) == 2 and {m.split(":")[0] for m in logged} == {"OTLP metrics",
                                                                          "OTLP traces"}
