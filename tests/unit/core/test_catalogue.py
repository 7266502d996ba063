"""The catalogue and the signal contract: one definition each, consistent names."""

from __future__ import annotations

import asyncio
import re

import blinker
import pytest

from telemetry import catalogue as cat
from telemetry import signals
from telemetry.catalogue import Kind
from tests.support import ROOT


def test_names_are_unique_and_valid_for_every_backend() -> None:
    prometheus = [spec.prometheus_name for spec in cat.CATALOGUE]
    assert len(set(prometheus)) == len(prometheus)
    assert len({spec.name for spec in cat.CATALOGUE}) == len(cat.CATALOGUE)
    for spec in cat.CATALOGUE:
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", spec.prometheus_name)
        assert re.fullmatch(r"yolo(\.[a-z_]+)+", spec.name)
        assert re.fullmatch(r"(yolo|gen_ai)(\.[a-z_]+)+", spec.otlp_name)
        assert len(spec.otlp_attributes) == len(spec.labels)
        for label in spec.labels:
            assert re.fullmatch(r"[a-z_]+", label) and not label.startswith("__")


def test_design_names_are_derived() -> None:
    expected = {
        cat.HANDOFFS: "yolo_handoffs_total",
        cat.HANDOFF_DURATION: "yolo_handoff_duration_seconds",
        cat.AGENT_ACTIVE_TIME: "yolo_agent_active_seconds_total",
        cat.STATE_FILE_SIZE: "yolo_state_file_size_bytes",
        cat.INVALID_EVENTS: "yolo_telemetry_invalid_events_total",
        cat.MODE: "yolo_mode",
        cat.HANDLER_TIME: "yolo_telemetry_handler_seconds_total",
    }
    for spec, name in expected.items():
        assert spec.prometheus_name == name
    assert cat.HANDOFFS.statsd_name("yolo") == "yolo.handoffs"
    assert cat.HANDOFFS.statsd_name("") == "handoffs"
    assert cat.lookup("yolo_handoffs_total") is cat.lookup("yolo.handoffs") is cat.HANDOFFS
    with pytest.raises(KeyError):
        cat.lookup("yolo_nothing")


def test_histograms_have_sorted_buckets_and_seconds() -> None:
    for spec in cat.CATALOGUE:
        if spec.kind is Kind.HISTOGRAM:
            assert spec.buckets == tuple(sorted(set(spec.buckets)))
            assert spec.unit == ("{token}" if spec is cat.LLM_TOKEN_USAGE else "s")
        else:
            assert spec.buckets == ()


def test_genai_metrics_take_the_convention_names_over_otlp_only() -> None:
    duration, tokens = cat.LLM_CALL_DURATION, cat.LLM_TOKEN_USAGE
    assert duration.otlp_name == "gen_ai.client.operation.duration"
    assert duration.otlp_attributes == ("gen_ai.agent.name", "gen_ai.request.model")
    assert tokens.otlp_name == "gen_ai.client.token.usage"
    assert tokens.otlp_attributes == (
        "gen_ai.agent.name", "gen_ai.request.model", "gen_ai.token.type")
    for spec in (duration, tokens):
        assert spec.otlp_constant_attributes == (("gen_ai.operation.name", "chat"),)
    assert duration.prometheus_name == "yolo_llm_call_duration_seconds"
    assert tokens.prometheus_name == "yolo_llm_token_usage"
    assert duration.statsd_name() == "yolo.llm.call.duration"
    assert duration.buckets[0] == 0.01 and duration.buckets[-1] == 81.92
    assert tokens.buckets[0] == 1 and tokens.buckets[-1] == 67108864
    assert cat.LLM_COST.prometheus_name == "yolo_llm_cost_usd_total"
    assert cat.MODE_TIME.prometheus_name == "yolo_mode_seconds_total"
    assert cat.HANDOFFS.otlp_attributes == cat.HANDOFFS.labels


def test_the_contract_has_the_eighteen_signals_as_attributes() -> None:
    assert len(signals.CONTRACT) == 18
    for spec in signals.CONTRACT:
        attribute = getattr(signals, spec.name.removeprefix("yolo."))
        assert attribute is blinker.signal(spec.name) is spec.signal


def test_timed_sends_the_duration_as_context_manager_and_decorator() -> None:
    received = []
    signal = blinker.signal("yolo.test_timed")

    def receiver(sender, **fields):
        received.append(fields)

    signal.connect(receiver)
    try:
        with signals.timed(signal, agent="pm"):
            pass
        with pytest.raises(ValueError), signals.timed("yolo.test_timed", agent="qa"):
            raise ValueError("still sent")

        @signals.timed(signal, agent="dev")
        def work() -> int:
            return 7

        @signals.timed(signal, agent="async")
        async def async_work() -> int:
            await asyncio.sleep(0)
            return 8

        assert work() == 7
        assert asyncio.run(async_work()) == 8
    finally:
        signal.disconnect(receiver)
    assert [r["agent"] for r in received] == ["pm", "qa", "dev", "async"]
    assert all(r["duration_s"] >= 0 for r in received)


def test_readme_lists_every_metric_and_signal() -> None:

    readme = (ROOT / "README.md").read_text()
    for spec in cat.CATALOGUE:
        assert f"`{spec.prometheus_name}`" in readme, spec.prometheus_name
    for spec in signals.CONTRACT:
        assert f"`{spec.name}`" in readme, spec.name
