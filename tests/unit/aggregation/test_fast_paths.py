"""Property-based: every fast path of the aggregator records exactly what the checked
path records (the payload check derived from the contract, then the handler), for
valid and invalid payloads alike."""

from __future__ import annotations

import time
from itertools import chain
from unittest import mock

import blinker
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry import catalogue as cat
from telemetry.aggregation import receiver as receiver_module
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.handlers.table import FAST_PATHS
from telemetry.signals import CONTRACT
from tests.conftest import FakeClock


class Name(str):
    """A well-behaved str subclass: valid, but not the plain case."""


MISSING = object()
#: Per kind: plain values (the fast paths' case), then the edges they must leave alone.
PLAIN = {
    "name": st.sampled_from(["pm", "dev"]),  # few: a pair meets itself again
    "duration": st.floats(min_value=0.0, max_value=1e6),
    "count": st.integers(0, 10**6),
    "amount": st.floats(min_value=0.0, max_value=1e6),
    "key": st.sampled_from(["k1", "k2", "", "x" * 300]),
}
EDGES = {
    "name": st.sampled_from(["", "  ", "x" * 200, None, 3, b"pm", MISSING])
    | st.builds(Name, st.sampled_from(["pm", "dev"])) | st.just(["pm"]),  # unhashable
    "duration": st.integers(0, 10)
    | st.sampled_from([-1.0, float("nan"), float("inf"), 2.0**60, True, None, "1.0", MISSING]),
    "count": st.sampled_from([-1, 2**60, 1.0, 2.5, True, None, "3", MISSING]),
    "amount": st.integers(0, 10)
    | st.sampled_from([-1.0, float("nan"), float("inf"), 2.0**60, True, None, "1.0", MISSING]),
    "key": st.sampled_from([3, b"k1", None, MISSING]) | st.builds(Name, st.just("k1")),
}
SPECS = [spec for spec in CONTRACT if spec.name in FAST_PATHS]
#: What the comparison leaves out: the handlers' own timing and the process' state.
UNCOMPARED = {cat.HANDLER_TIME, cat.PROCESS_MEMORY, cat.PROCESS_CPU}


def _value(draw: st.DrawFn, kind: str) -> object:
    # mostly plain values, so that an edge meets otherwise valid fields (and a payload
    # of ten fields is often valid as a whole)
    return draw(EDGES[kind] if draw(st.integers(0, 9)) == 0 else PLAIN[kind])


@st.composite
def events(draw: st.DrawFn) -> list[tuple[str, dict]]:
    """One to three events of a signal with the same required fields (a fast path
    needs a pair seen before), each with its own optional ones."""
    spec = draw(st.sampled_from(SPECS))
    required = {key: _value(draw, kind) for key, kind in spec.required.items()}
    sent = []
    for _ in range(draw(st.integers(1, 3))):
        fields = {key: value for key, value in required.items() if value is not MISSING}
        for key, kind in spec.optional.items():  # each absent, plain or an edge
            if key not in fields and draw(st.booleans()):
                value = _value(draw, kind)
                if value is not MISSING:
                    fields[key] = value
        sent.append((spec.name, fields))
    return sent


def _recorded(agg: Aggregator) -> tuple[dict, dict]:
    """What ``agg`` recorded: the exact values, and the epoch timestamps apart.

    A timestamp gauge is the aggregator's (fake) clock converted to wall time at the
    collection, so two aggregators collected one after the other differ by the real
    time in between: those are compared to within a second."""
    exact, stamps = {}, {}
    for family in agg.collect():
        if family.spec in UNCOMPARED:
            continue
        values = {sample.labels: sample.value for sample in family.samples}
        (stamps if family.spec.name.endswith(".timestamp") else exact)[family.spec.name] = values
    return exact, stamps


def test_the_fast_path_signals_are_the_frequent_ones_of_the_contract() -> None:
    assert set(FAST_PATHS) <= {spec.name for spec in CONTRACT}
    assert len(SPECS) == len(FAST_PATHS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=20).map(lambda runs: [*chain(*runs)]))
def test_fast_paths_record_what_the_checked_path_records(sent: list[tuple[str, dict]]) -> None:
    checked = Aggregator(clock=FakeClock(), max_series=20)
    fast = Aggregator(clock=FakeClock(), max_series=20)
    with mock.patch.dict(receiver_module.FAST_PATHS, clear=True):
        checked.connect()  # its receivers are made without any fast path
    fast.connect()
    try:
        started = time.time()
        for number, (name, fields) in enumerate(sent):
            # a timestamp, so that both record the same agent active time
            blinker.signal(name).send(None, timestamp=started + number, **fields)
        fast_exact, fast_stamps = _recorded(fast)
        checked_exact, checked_stamps = _recorded(checked)
        assert fast_exact == checked_exact
        for table in ("open_tools", "last_seen", "in_flight"):  # what later gauges read
            assert getattr(fast.state.ops, table) == getattr(checked.state.ops, table), table
        assert fast.state.ops.runs.last == checked.state.ops.runs.last
        assert fast_stamps.keys() == checked_stamps.keys()
        for name, values in fast_stamps.items():
            assert values == pytest.approx(checked_stamps[name], abs=1.0), name
    finally:
        fast.disconnect()
        checked.disconnect()
