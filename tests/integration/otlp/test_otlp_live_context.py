"""Other instrumentation joins our traces, at a real receiver (rotel): spans made with
the plain OpenTelemetry API and by opentelemetry-instrumentation-requests inside an
agent step arrive under that step's ``invoke_agent`` span."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from opentelemetry import trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor

from telemetry.tracing.traced import TracedOrchestrator
from tests.integration.otlp.test_otlp_rotel import otlp_config
from tests.support.backends import RotelReceiver, rotel_receiver

pytestmark = pytest.mark.backend


@pytest.fixture
def rotel(tmp_path: Path) -> Iterator[RotelReceiver]:
    with rotel_receiver(tmp_path) as receiver:
        yield receiver


class _Handler(BaseHTTPRequestHandler):
    received: list[str | None] = []

    def do_GET(self) -> None:
        self.received.append(self.headers.get("traceparent"))
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str | None]]]:
    """A local HTTP server, and the ``traceparent`` headers it received."""
    handler = type("Handler", (_Handler,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", handler.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def instrumented_requests() -> Iterator[requests.Session]:
    RequestsInstrumentor().instrument()
    session = requests.Session()
    session.trust_env = False  # loopback, never through a proxy from the environment
    yield session
    session.close()
    RequestsInstrumentor().uninstrument()


def by_name(spans: list[dict]) -> dict[str, dict]:
    return {span["name"]: span for span in spans}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_api_and_http_client_spans_nest_under_the_agent_step(
        rotel: RotelReceiver, start_telemetry, http_server, instrumented_requests,
        protocol: str) -> None:
    url, received = http_server
    tel = start_telemetry(otlp_config(rotel, protocol))

    class Orchestrator(TracedOrchestrator):
        def run(self) -> None:
            with self.workflow("wf-live", "live"), self.agent("pm"):
                with trace.get_tracer("app").start_as_current_span("plain api"):
                    pass
                with self.decision("pm", "fetch"):
                    assert instrumented_requests.get(url, timeout=10).text == "ok"

    Orchestrator().run()
    tel.stop()
    spans = by_name(rotel.wait_for_spans(count=5))
    workflow, pm = spans["invoke_workflow live"], spans["invoke_agent pm"]
    decision, plain, get = spans["decision fetch"], spans["plain api"], spans["GET"]
    assert {s["trace_id"] for s in spans.values()} == {workflow["trace_id"]}
    assert pm["parent_span_id"] == workflow["span_id"]
    assert plain["parent_span_id"] == pm["span_id"]
    assert decision["parent_span_id"] == pm["span_id"]
    assert get["parent_span_id"] == decision["span_id"]
    assert get["kind"] == "CLIENT"
    # the request carried the context on (the W3C propagator, OTEL_PROPAGATORS' default)
    assert len(received) == 1
    version, trace_id, parent_id, flags = received[0].split("-")
    assert (version, trace_id, parent_id) == ("00", get["trace_id"], get["span_id"])
    assert int(flags, 16) & 1  # sampled


def test_concurrent_tasks_nest_under_their_own_agent(rotel: RotelReceiver, start_telemetry,
                                                     http_server, instrumented_requests) -> None:
    url, _ = http_server
    tel = start_telemetry(otlp_config(rotel, "http/protobuf"))
    app = trace.get_tracer("app")

    class Orchestrator(TracedOrchestrator):
        async def step(self, agent: str, both_open: asyncio.Barrier) -> None:
            with self.agent(agent):
                await both_open.wait()  # both agents are open at once from here
                with app.start_as_current_span(f"work of {agent}"):
                    await asyncio.to_thread(instrumented_requests.get, url, timeout=10)

        async def run(self) -> None:
            with self.workflow("wf-tasks", "tasks"):
                both_open = asyncio.Barrier(2)
                await asyncio.gather(self.step("pm", both_open), self.step("dev", both_open))

    asyncio.run(Orchestrator().run())
    tel.stop()
    spans = rotel.wait_for_spans(count=7)
    named = by_name(spans)
    assert {s["trace_id"] for s in spans} == {named["invoke_workflow tasks"]["trace_id"]}
    gets = {s["parent_span_id"]: s for s in spans if s["name"] == "GET"}
    for agent in ("pm", "dev"):
        work = named[f"work of {agent}"]
        assert work["parent_span_id"] == named[f"invoke_agent {agent}"]["span_id"]
        assert work["span_id"] in gets  # the request made in the task, under its work
