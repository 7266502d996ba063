"""The adapter base: a framework callback never raises, failures are counted, and
uninstrument() runs its undo exactly once."""

from __future__ import annotations

import logging
import subprocess
import sys

import blinker

import telemetry
from telemetry import catalogue as cat
from telemetry.adapters import AdapterEmitter, Instrumentation
from tests.support import ROOT


def test_uninstrument_runs_the_undo_once_and_never_raises(caplog):
    calls = []

    def undo():
        calls.append(1)
        raise RuntimeError("framework refused")

    handle = Instrumentation("demo", undo)
    assert handle.active
    with caplog.at_level(logging.ERROR, logger="telemetry.adapters"):
        handle.uninstrument()
        handle.uninstrument()
    assert calls == [1]
    assert not handle.active
    assert "could not fully uninstrument demo" in caplog.text


def test_the_handle_uninstruments_on_leaving_a_with_block():
    calls = []
    with Instrumentation("demo", lambda: calls.append(1)) as handle:
        assert handle.active
    assert calls == [1]


def test_a_guarded_callback_swallows_counts_and_logs_once(caplog):
    emitter = AdapterEmitter("demo")

    @emitter.guard
    def on_event(value):
        raise ValueError(f"bad {value}")

    with caplog.at_level(logging.ERROR, logger="telemetry.adapters"):
        assert on_event(1) is None
        assert on_event(2) is None
    assert emitter.failures == 2
    assert caplog.text.count("adapter for demo failed") == 1


def test_failures_are_counted_in_the_running_telemetry():
    with telemetry.start({"server": {"enabled": False}}) as tel:
        emitter = AdapterEmitter("demo")
        emitter.guard(lambda: 1 / 0)()
        assert tel.aggregator.value(cat.DROPPED, ("adapter_demo", "exception")) == 1


def test_send_reaches_receivers_with_the_adapter_as_sender():
    seen = []
    signal = blinker.signal("yolo.test_adapter_send")

    def receiver(sender, **fields):
        seen.append((sender, fields))

    signal.connect(receiver)
    try:
        AdapterEmitter("demo").send("yolo.test_adapter_send", agent="pm")
    finally:
        signal.disconnect(receiver)
    assert seen == [("adapter:demo", {"agent": "pm"})]


def test_a_receiver_that_raises_does_not_reach_the_framework():
    signal = blinker.signal("yolo.test_adapter_raise")

    def receiver(sender, **fields):
        raise RuntimeError("receiver broke")

    signal.connect(receiver)
    emitter = AdapterEmitter("demo")
    try:
        emitter.send("yolo.test_adapter_raise", agent="pm")
    finally:
        signal.disconnect(receiver)
    assert emitter.failures == 1


def test_importing_telemetry_loads_no_framework():
    code = ("import sys, telemetry, telemetry.adapters; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in FRAMEWORKS))")
    frameworks = "{'agents', 'pydantic_ai', 'langgraph', 'langchain_core', 'crewai', 'google'}"
    out = subprocess.run([sys.executable, "-c", f"FRAMEWORKS = {frameworks}; {code}"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_call_key_is_a_short_digest_equal_for_equal_arguments() -> None:
    from telemetry.adapters import call_key

    secret = '{"card": "4111-1111-1111-1111"}'
    assert call_key(secret) == call_key(secret)
    assert call_key({"b": 1, "a": 2}) == call_key({"a": 2, "b": 1})  # order-free for dicts
    assert call_key(secret) != call_key('{"card": "0000"}')
    assert len(call_key(secret)) == 16 and "4111" not in call_key(secret)
    assert call_key(None) is None


def test_token_count_takes_positive_ints_only() -> None:
    from telemetry.adapters import token_count

    assert [token_count(v) for v in (12, 0, -3, None, 2.5, True, "7")] == [12, 0, 0, 0, 0, 0, 0]


def test_active_trace_fields_name_the_active_opentelemetry_span() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from telemetry.adapters import active_trace_fields

    assert active_trace_fields() == {}
    with TracerProvider().get_tracer("test").start_as_current_span("outer") as span:
        context = span.get_span_context()
        fields = active_trace_fields()
    assert fields["traceparent"].split("-")[1:3] == [f"{context.trace_id:032x}",
                                                     f"{context.span_id:016x}"]
