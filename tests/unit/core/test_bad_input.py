"""Property-based: arbitrary payloads on every signal never raise into the sender, every
dropped event is counted with a reason, valid metrics are unaffected, and the
exposition stays valid."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import blinker
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.signals import CONTRACT, MODES
from tests.conftest import FakeClock

BASELINE_AGENT = "baseline-agent"

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10),  # control characters
    st.just("x" * 1_000_000),
    st.just("é\u202e\U0001F600\x00"),
    st.just("fs-\udcff-name"),  # a lone surrogate, as os.fsdecode makes them
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
plausible = {
    "name": st.text(min_size=1, max_size=20).filter(lambda s: s != BASELINE_AGENT)
    | st.just("fs-\udcff-name"),
    "duration": st.floats(min_value=0, max_value=1e6),
    "count": st.integers(min_value=0, max_value=10**6),
    "amount": st.floats(min_value=0, max_value=1e6) | st.integers(min_value=0, max_value=100),
    "key": st.text(max_size=40) | st.just("k" * 1_000_000),
    "mode": st.sampled_from(MODES),
    "exception": st.just(ValueError("boom")),
    "timestamp": st.floats(min_value=0, max_value=2e9),
}


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, dict]:
    spec = draw(st.sampled_from(CONTRACT))
    fields: dict = {}
    for key, kind in {**spec.required, **spec.optional,
                      "timestamp": "timestamp", "workflow_id": "name"}.items():
        choice = draw(st.sampled_from(("valid", "junk", "missing")))
        if choice == "valid":
            fields[key] = draw(plausible[kind])
        elif choice == "junk":
            fields[key] = draw(junk)
    for extra in draw(st.lists(st.text(min_size=1, max_size=8), max_size=2)):
        if extra not in fields and extra.isidentifier():
            fields[extra] = draw(junk)
    return spec.name, fields


def _counts(agg: Aggregator) -> tuple[int, int]:
    _, system = agg.snapshot()
    return system.events_total, system.invalid_events_total


def _baseline(agent_name: str = BASELINE_AGENT) -> None:
    blinker.signal("yolo.decision_made").send(None, agent=agent_name, decision_type="fixed",
                                              duration_s=0.5)
    blinker.signal("yolo.context_updated").send(None, agent=agent_name, items=2, tokens=77)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(payloads(), min_size=1, max_size=20))
def test_arbitrary_payloads_never_raise_and_are_all_accounted_for(
    events: list[tuple[str, dict]],
) -> None:
    agg = Aggregator(clock=FakeClock(), max_series=50)
    agg.connect()
    try:
        for name, fields in events:
            accepted_before, dropped_before = _counts(agg)
            blinker.signal(name).send(None, **fields)  # would raise into the test
            accepted, dropped = _counts(agg)
            # each event is either accepted or dropped and counted, never both or neither
            assert (accepted - accepted_before) + (dropped - dropped_before) == 1
            spec = next(s for s in CONTRACT if s.name == name)
            if any(fields.get(key) is None for key in spec.required):
                assert dropped - dropped_before == 1
            _baseline()
        # The baseline's own series hold exactly what it sent.
        decisions = agg.value(cat.DECISIONS, (BASELINE_AGENT, "fixed"))
        assert decisions == len(events)
        assert agg.value(cat.CONTEXT_TOKENS, (BASELINE_AGENT,)) == 77
        exposition = _scrape(agg)
        families = list(text_string_to_metric_families(exposition))
        assert any(f.name == "yolo_decisions" for f in families)
    finally:
        agg.disconnect()


def _scrape(agg: Aggregator) -> str:
    from prometheus_client import generate_latest

    from exporters.prometheus import PrometheusExporter
    from telemetry.config import load

    exporter = PrometheusExporter(PrometheusExporter.Config(), agg, load({}, environ={}))
    return generate_latest(exporter.registry).decode()


def test_hostile_label_values_give_a_valid_exposition(tmp_path) -> None:
    """promtool, the reference parser, accepts the scrape after the worst names."""
    promtool = shutil.which("promtool")
    if promtool is None:
        from tests.support.backends import require_backend
        require_backend("promtool", False, "Debian package prometheus")
    agg = Aggregator(clock=FakeClock())
    agg.connect()
    try:
        hostile = ['quo"te', "back\\slash", "new\nline", "\x00\x07bell", "é\u202e\U0001F600",
                   "}{,=", "x" * 100_000, " ", "a\tb", "fs-\udcff-name"]
        for name in hostile:
            blinker.signal("yolo.handoff_completed").send(None, from_agent=name, to_agent=name,
                                                          duration_s=1.0)
            blinker.signal("yolo.error_occurred").send(None, agent=name, error_type=name)
        blinker.signal("yolo.decision_made").send(None, agent="a", decision_type="d",
                                                  duration_s=math.nan)
        text = _scrape(agg)
    finally:
        agg.disconnect()
    path = tmp_path / "metrics.txt"
    path.write_text(text)
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=60)
    # promtool exits 0 only when the exposition parses and passes its lint checks.
    assert result.returncode == 0, result.stdout + result.stderr
    assert max(len(line) for line in text.splitlines()) < 2000  # capped label values


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
