"""Smoke tests for the real-backend helpers in tests/backends/.

They drive each backend with a reference client (prometheus_client, the OpenTelemetry SDK,
raw UDP lines) and no yolo-telemetry code, so that when an exporter test fails we know
the harness is not the culprit.
"""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from tests.support.backends import (
    LOOPBACK,
    PrometheusServer,
    RotelReceiver,
    StatsdDaemon,
    free_port,
    parse_js_inspect,
    prometheus_server,
    promtool_check_metrics,
    promtool_check_rules,
    promtool_test_rules,
    require_backend,
    rotel_receiver,
    statsd_daemon,
    wait_until,
)

# --------------------------------------------------------------------------- helpers


def test_free_port_binds_loopback_and_is_not_reused() -> None:
    ports = {free_port() for _ in range(5)}
    assert len(ports) == 5
    udp = free_port("udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, udp))
    with pytest.raises(ValueError):
        free_port("sctp")


def test_require_backend_skips_or_fails_as_ci_demands(monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend("present", True, "never raised")
    monkeypatch.delenv("YOLO_TELEMETRY_REQUIRE_BACKENDS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="missing thing"):
        require_backend("absent", False, "missing thing")
    monkeypatch.setenv("YOLO_TELEMETRY_REQUIRE_BACKENDS", "1")
    with pytest.raises(pytest.fail.Exception, match="missing thing"):
        require_backend("absent", False, "missing thing")


def test_wait_until_returns_value_and_times_out_with_reason() -> None:
    calls = iter([0, None, "ready"])
    assert wait_until(lambda: next(calls), timeout=5, interval=0.001) == "ready"
    with pytest.raises(AssertionError, match="never"):
        wait_until(lambda: False, timeout=0.05, what="never")


# --------------------------------------------------------------------------- Prometheus


@pytest.fixture
def registry_server() -> Iterator[tuple[CollectorRegistry, str]]:
    """A prometheus_client HTTP server on loopback, the reference exposition producer."""
    registry = CollectorRegistry()
    port = free_port()
    server, thread = start_http_server(port, addr=LOOPBACK, registry=registry)
    try:
        yield registry, f"{LOOPBACK}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.backend
def test_prometheus_scrapes_and_queries(
    tmp_path: Path, registry_server: tuple[CollectorRegistry, str]
) -> None:
    registry, target = registry_server
    requests = Counter("smoke_requests", "Requests seen.", ["route"], registry=registry)
    requests.labels(route="/a").inc(3)
    Gauge("smoke_temperature", "A gauge.", registry=registry).set(4.5)

    with prometheus_server(tmp_path, [target]) as prom:
        targets = prom.wait_for_targets_up()
        assert targets[0]["labels"]["job"] == "yolo"
        prom.wait_for('smoke_requests_total{route="/a"} == 3')
        assert prom.query_value('smoke_requests_total{job="yolo"}') == 3.0
        assert prom.query_value("smoke_temperature") == 4.5
        assert prom.query_value("absent_metric_name") is None
        series = prom.query("up")
        assert series[0]["metric"]["instance"] == target
        assert prom.query("scalar(smoke_temperature)")[0]["value"][1] == "4.5"

        requests.labels(route="/a").inc(2)
        prom.wait_for(lambda: prom.query_value('smoke_requests_total{route="/a"}') == 5.0)


@pytest.mark.backend
def test_prometheus_file_sd_rules_and_alerts(
    tmp_path: Path, registry_server: tuple[CollectorRegistry, str]
) -> None:
    registry, target = registry_server
    Gauge("smoke_queue_depth", "Work waiting.", registry=registry).set(7)
    rules = tmp_path / "rules.yml"
    rules.write_text(
        textwrap.dedent(
            """\
            groups:
              - name: smoke
                rules:
                  - record: smoke:queue_depth:doubled
                    expr: smoke_queue_depth * 2
                  - alert: SmokeQueueDeep
                    expr: smoke_queue_depth > 5
                    labels: {severity: warning}
                    annotations: {summary: "queue is {{ $value }} deep"}
            """
        )
    )
    ok, output = promtool_check_rules(rules)
    assert ok, output
    rule_tests = tmp_path / "rules_test.yml"
    rule_tests.write_text(
        textwrap.dedent(
            f"""\
            rule_files: [{rules}]
            evaluation_interval: 1m
            tests:
              - interval: 1m
                input_series:
                  - series: smoke_queue_depth
                    values: "7 7 7"
                promql_expr_test:
                  - expr: smoke:queue_depth:doubled
                    eval_time: 1m
                    exp_samples: [{{labels: "smoke:queue_depth:doubled", value: 14}}]
                alert_rule_test:
                  - eval_time: 1m
                    alertname: SmokeQueueDeep
                    exp_alerts:
                      - exp_labels: {{severity: warning}}
                        exp_annotations: {{summary: "queue is 7 deep"}}
            """
        )
    )
    ok, output = promtool_test_rules(rule_tests)
    assert ok, output
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - record: y\n        expr: sum(\n")
    ok, output = promtool_check_rules(broken)
    assert not ok and output

    sd_file = tmp_path / "targets.json"
    PrometheusServer.write_file_sd(sd_file, [])
    with prometheus_server(tmp_path, [], rule_files=[rules], file_sd_path=sd_file) as prom:
        assert prom.targets() == []
        PrometheusServer.write_file_sd(sd_file, [target], {"team": "smoke"})
        prom.wait_for_targets_up(count=1)
        prom.wait_for('smoke:queue_depth:doubled{team="smoke"} == 14')
        firing = prom.wait_for(lambda: [a for a in prom.alerts() if a["state"] == "firing"])
        assert firing[0]["labels"]["alertname"] == "SmokeQueueDeep"
        assert firing[0]["annotations"]["summary"] == "queue is 7 deep"
        groups = prom.rules()
        assert [r["name"] for r in groups[0]["rules"]] == [
            "smoke:queue_depth:doubled",
            "SmokeQueueDeep",
        ]
        assert [g["name"] for g in prom.rules("alert")] == ["smoke"]
        prom.reload()


@pytest.mark.backend
def test_promtool_check_metrics_accepts_valid_and_rejects_invalid() -> None:
    registry = CollectorRegistry()
    Counter("smoke_events", "Events seen.", registry=registry).inc()
    ok, output = promtool_check_metrics(generate_latest(registry).decode())
    assert ok, output

    ok, output = promtool_check_metrics("smoke_broken{ 3\n")
    assert not ok
    assert "pars" in output.lower()

    lint_only = "# HELP smoke_c C.\n# TYPE smoke_c counter\nsmoke_c 1\n"
    ok, output = promtool_check_metrics(lint_only)
    assert not ok
    assert "_total" in output
    assert promtool_check_metrics(lint_only, lint=False)[0]
    assert not promtool_check_metrics("smoke_broken{ 3\n", lint=False)[0]

    # OpenMetrics is linted by classic rules ("no help text" for every counter), so by
    # default only parse errors count for it.
    openmetrics = generate_openmetrics(registry).decode()
    assert not promtool_check_metrics(openmetrics, lint=True)[0]
    ok, output = promtool_check_metrics(openmetrics)
    assert ok, output
    ok, _ = promtool_check_metrics(openmetrics.replace("smoke_events_total 1.0", "smoke{ 1"))
    assert not ok


# --------------------------------------------------------------------------- rotel


def _send_otel(receiver: RotelReceiver, protocol: str) -> list[Any]:
    """Export one trace (parent, child, events) and a counter and histogram with the SDK.

    Returns the SDK's own record of the finished spans, to compare with what rotel got.
    """
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
        metric_exporter = OTLPMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        span_exporter = HttpSpanExporter(endpoint=receiver.traces_url)
        metric_exporter = HttpMetricExporter(endpoint=receiver.metrics_url)

    resource = Resource.create({"service.name": f"smoke-{protocol}"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    memory = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = tracer_provider.get_tracer("smoke.tracer", "1.2.3")
    with tracer.start_as_current_span("setup") as setup:
        pass
    with (
        tracer.start_as_current_span(
            "agent.run", kind=SpanKind.SERVER, attributes={"agent.name": "planner"}
        ),
        tracer.start_as_current_span(
            "tool.call",
            kind=SpanKind.CLIENT,
            attributes={
                "tool.name": "search",
                "tool.retries": 2,
                "tool.cost": 0.25,
                "tool.cached": False,
                "tool.tags": ["a, b)", "c"],
                "tool.output": "line one)\n  (line two)\n",
                "ns:key": "colon",
            },
            links=[Link(setup.get_span_context(), {"link.why": "follows"})],
        ) as child,
    ):
        child.add_event("retry", {"attempt": 1})
        try:
            raise ValueError("upstream said (no)")
        except ValueError as exc:
            child.record_exception(exc)
        child.set_status(Status(StatusCode.ERROR, "timeout: upstream"))
    finished = list(memory.get_finished_spans())
    tracer_provider.shutdown()

    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=[
            View(
                instrument_name="smoke.latency",
                aggregation=ExplicitBucketHistogramAggregation([0.1, 1.0, 10.0]),
            )
        ],
    )
    meter = meter_provider.get_meter("smoke.meter")
    meter.create_counter("smoke.calls", unit="1", description="Calls.").add(3, {"tool": "search"})
    latency = meter.create_histogram("smoke.latency", unit="s")
    for value in (0.05, 0.5, 0.7, 30.0):
        latency.record(value, {"tool": "search"})

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(4.25, {"queue": "main"})]

    meter.create_observable_gauge("smoke.queue", callbacks=[observe])
    meter_provider.shutdown()  # final collect and export
    return finished


@pytest.mark.backend
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_rotel_receives_spans_and_metrics(tmp_path: Path, protocol: str) -> None:
    with rotel_receiver(tmp_path) as rotel:
        sent = {s.name: s for s in _send_otel(rotel, protocol)}
        spans = rotel.wait_for_spans(count=3)
        by_name = {s["name"]: s for s in spans}
        parent, child = by_name["agent.run"], by_name["tool.call"]
        assert parent["parent_span_id"] is None
        assert child["parent_span_id"] == parent["span_id"]
        assert child["trace_id"] == parent["trace_id"] and len(child["trace_id"]) == 32
        assert parent["kind"] == "SERVER" and child["kind"] == "CLIENT"
        assert parent["attributes"] == {"agent.name": "planner"}
        assert child["attributes"] == {
            "tool.name": "search",
            "tool.retries": 2,
            "tool.cost": 0.25,
            "tool.cached": False,
            "tool.tags": ["a, b)", "c"],
            "tool.output": "line one)\n  (line two)\n",
            "ns:key": "colon",
        }
        setup = by_name["setup"]
        assert [
            (link["trace_id"], link["span_id"], link["attributes"]) for link in child["links"]
        ] == [(setup["trace_id"], setup["span_id"], {"link.why": "follows"})]
        assert (child["status_code"], child["status_message"]) == ("ERROR", "timeout: upstream")
        assert parent["status_code"] == "UNSET"
        assert [e["name"] for e in child["events"]] == ["retry", "exception"]
        assert child["events"][0]["attributes"] == {"attempt": 1}
        # The traceback spans several lines; it must come back exactly as the SDK sent it.
        sent_exception = sent["tool.call"].events[1]
        assert child["events"][1]["attributes"] == dict(sent_exception.attributes)
        assert child["events"][1]["time"] == sent_exception.timestamp
        assert child["span_id"] == f"{sent['tool.call'].context.span_id:016x}"
        assert child["start_time"] == sent["tool.call"].start_time
        assert parent["start_time"] <= child["start_time"] <= child["end_time"]
        assert child["end_time"] <= parent["end_time"]
        assert child["resource"]["service.name"] == f"smoke-{protocol}"
        assert (child["scope"], child["scope_version"]) == ("smoke.tracer", "1.2.3")

        rotel.wait_for_metrics(lambda p: p["name"] == "smoke.latency")
        calls = rotel.last_point("smoke.calls", {"tool": "search"})
        assert calls is not None
        assert calls["value"] == 3
        assert (calls["type"], calls["monotonic"], calls["temporality"]) == (
            "Sum",
            True,
            "CUMULATIVE",
        )
        assert (calls["unit"], calls["description"]) == ("1", "Calls.")
        latency = rotel.last_point("smoke.latency")
        assert latency is not None
        assert latency["type"] == "Histogram" and latency["unit"] == "s"
        assert latency["attributes"] == {"tool": "search"}
        assert latency["count"] == 4
        assert math.isclose(latency["sum"], 31.25)
        assert (latency["min"], latency["max"]) == (0.05, 30.0)
        assert latency["bounds"] == [0.1, 1.0, 10.0]
        assert latency["bucket_counts"] == [1, 2, 0, 1]
        assert latency["resource"]["service.name"] == f"smoke-{protocol}"
        assert latency["scope"] == "smoke.meter"
        assert latency["start_time"] <= latency["time"]
        queue = rotel.last_point("smoke.queue", {"queue": "main"})
        assert queue is not None
        assert (queue["type"], queue["value"], queue["monotonic"]) == ("Gauge", 4.25, None)


@pytest.mark.backend
def test_rotel_kill_restart_keeps_ports_and_clear_forgets(tmp_path: Path) -> None:
    with rotel_receiver(tmp_path) as rotel:
        ports = (rotel.grpc_port, rotel.http_port)
        _send_otel(rotel, "http")
        rotel.wait_for_spans(count=3)
        rotel.kill()
        assert not rotel.running
        rotel.restart()
        assert (rotel.grpc_port, rotel.http_port) == ports
        rotel.clear()
        assert rotel.spans() == [] and rotel.metrics() == []
        _send_otel(rotel, "grpc")
        spans = rotel.wait_for_spans(lambda s: s["name"] == "tool.call")
        assert spans[0]["resource"]["service.name"] == "smoke-grpc"


# --------------------------------------------------------------------------- StatsD


def _send_udp(daemon: StatsdDaemon, *datagrams: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram.encode(), (daemon.host, daemon.port))


@pytest.mark.backend
def test_statsd_counts_gauges_and_timers(tmp_path: Path) -> None:
    with statsd_daemon(tmp_path) as statsd:
        assert statsd.counters() == {} and statsd.gauges() == {} and statsd.timers() == {}
        _send_udp(
            statsd,
            "a:3|c",
            "a:1|c|@0.5",
            "g:5|g",
            "g:+2|g",
            "t:10|ms",
            "t:20|ms|@0.5",
            "u:x|s\nu:y|s\nu:x|s",
        )
        statsd.wait_for_metrics_received(9)
        assert statsd.counters() == {"a": 5}
        assert statsd.gauges() == {"g": 7}
        assert statsd.timers() == {"t": [10, 20]}
        stats = statsd.stats()
        assert (stats["packets_received"], stats["metrics_received"]) == (7, 9)
        assert stats["bad_lines_seen"] == 0 and stats["uptime"] >= 0
        assert stats["yoloprobe.packets_seen"] == 7
        assert statsd.lines()[:2] == ["a:3|c", "a:1|c|@0.5"]
        assert len(statsd.packets()) == 7
        assert "statsd.packets_received" in statsd.counters(include_internal=True)

        _send_udp(statsd, "bad line", "x:abc|c")
        statsd.wait_for(lambda d: d.stats()["bad_lines_seen"] == 2)
        assert "deleted: a" in statsd.delete("counters", "a")
        assert "a" not in statsd.counters()

        with pytest.raises(RuntimeError):
            statsd.timer_counts()
        statsd.stop()
        assert statsd.timer_counts() == {"t": 3}
        assert sorted(statsd.sets()["u"]) == ["x", "y"]
        flush = statsd.last_flush()
        assert flush["timer_data"]["t"]["count"] == 3
        assert flush["gauges"]["g"] == 7


@pytest.mark.backend
def test_statsd_timer_list_is_complete_and_restart_reuses_ports(tmp_path: Path) -> None:
    with statsd_daemon(tmp_path) as statsd:
        ports = (statsd.port, statsd.admin_port)
        values = [float(i) + 0.5 for i in range(150)]  # more than util.inspect shows by default
        _send_udp(statsd, *[f"big:{v}|ms" for v in values])
        statsd.wait_for(lambda d: len(d.timers().get("big", [])) == len(values))
        assert statsd.timers()["big"] == values

        statsd.stop()
        assert not statsd.running
        statsd.start()
        assert (statsd.port, statsd.admin_port) == ports
        assert statsd.timers() == {}
        _send_udp(statsd, "after:1|c")
        statsd.wait_for(lambda d: d.counters().get("after") == 1)


@pytest.mark.backend
def test_parse_js_inspect_reads_node_default_output() -> None:
    """Node's default util.inspect wraps long objects and truncates arrays; parse or refuse."""
    node = shutil.which("node") or shutil.which("nodejs")
    require_backend("node", node is not None, "no node binary on PATH")
    assert node is not None
    script = textwrap.dedent(
        """\
        const util = require('util');
        const small = {'a.b': 1, c: -2.5, 'd-e': [1, 2], f: NaN, g: Infinity, 'h\\'i': 'x'};
        const wide = {};
        for (let i = 0; i < 12; i++) { wide['stats.some.long.metric.name.' + i] = i / 3; }
        console.log(util.inspect(small));
        console.log('---');
        console.log(util.inspect(wide));
        console.log('---');
        console.log(util.inspect({big: Array.from({length: 120}, (_, i) => i)}));
        """
    )
    out = subprocess.run(
        [node, "-e", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    small_text, wide_text, big_text = out.split("---\n")
    small: Any = parse_js_inspect(small_text)
    assert small["a.b"] == 1 and small["c"] == -2.5 and small["d-e"] == [1, 2]
    assert math.isnan(small["f"]) and small["g"] == math.inf and small["h'i"] == "x"
    assert "\n" in wide_text.strip()
    wide = parse_js_inspect(wide_text)
    assert len(wide) == 12 and wide["stats.some.long.metric.name.3"] == 1
    with pytest.raises(ValueError, match="truncated"):
        parse_js_inspect(big_text)
