"""One tracer provider for every span: telemetry's becomes the global one when the
application has none, and the application's makes telemetry's spans when it has one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from telemetry.tracing.provider import SharedTracerProvider
from tests.conftest import send


@pytest.fixture
def fresh_globals() -> Iterator[None]:
    """OpenTelemetry's global provider unset (it can be set once per process)."""
    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done = None, False
    yield
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done = saved


def otlp(**tracing: object) -> dict:
    # nothing listens on the discard port: exports fail fast, which these tests ignore
    return {"exporters": {"otlp": {"enabled": True, "endpoint": "http://127.0.0.1:9",
                                   "interval_s": 3600, "timeout_s": 0.2, "metrics": False}},
            "tracing": tracing}


def run_agent_with_other_span() -> None:
    send("agent_activated", agent="pm")
    with trace.get_tracer("other").start_as_current_span("other"):
        pass
    send("agent_deactivated", agent="pm")


def test_without_an_application_provider_telemetrys_exports_other_spans(
        fresh_globals, start_telemetry) -> None:
    tracer = trace.get_tracer("cached before start")  # as instrumentation keeps its tracer
    tel = start_telemetry(otlp())
    assert isinstance(trace.get_tracer_provider(), SharedTracerProvider)
    memory = InMemorySpanExporter()
    tel.exporters["otlp"].tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    run_agent_with_other_span()
    with tracer.start_as_current_span("cached"):
        pass
    names = {span.name: span for span in memory.get_finished_spans()}
    assert names["other"].parent.span_id == names["invoke_agent pm"].context.span_id
    assert "cached" in names
    assert names["other"].resource is names["invoke_agent pm"].resource
    tel.stop()
    assert not tracer.start_span("after stop").is_recording()
    # a second instance takes over the global tracers
    second = start_telemetry(otlp())
    memory_2 = InMemorySpanExporter()
    second.exporters["otlp"].tracer_provider.add_span_processor(SimpleSpanProcessor(memory_2))
    with tracer.start_as_current_span("second"):
        pass
    assert [span.name for span in memory_2.get_finished_spans()] == ["second"]


def test_the_applications_provider_makes_telemetrys_spans(fresh_globals,
                                                          start_telemetry) -> None:
    memory = InMemorySpanExporter()
    application = TracerProvider(shutdown_on_exit=False)
    application.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(application)
    tel = start_telemetry(otlp())
    assert trace.get_tracer_provider() is application
    assert tel.exporters["otlp"].tracer_provider is application
    run_agent_with_other_span()
    names = {span.name: span for span in memory.get_finished_spans()}
    assert names["other"].parent.span_id == names["invoke_agent pm"].context.span_id
    assert tel.health()["checks"]["exporter:otlp"]["traces"]["provider"] == "application"
    application.shutdown()


def test_global_provider_off_leaves_the_global_provider_alone(fresh_globals,
                                                              start_telemetry) -> None:
    start_telemetry(otlp(global_provider=False))
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
