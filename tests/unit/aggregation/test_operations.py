"""Agent operations: each derived signal with an injected clock (stalls inside and
outside a tool call, loops, repeats, workflows in flight, mode time, state saves),
the LLM and tool call metrics, their payload checks, and hostile input."""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.aggregation.handlers.operations import MAX_OPEN_TOOL_CALLS
from telemetry.catalogue import MetricSpec
from telemetry.model import HistogramValue
from tests.conftest import FakeClock, send
from tests.support.faults import get_text

#: The wall clock is the fake monotonic clock plus this: epoch gauges are exact.
WALL = 1_700_000_000.0


@pytest.fixture
def agg(clock: FakeClock) -> Iterator[Aggregator]:
    aggregator = Aggregator(clock=clock, wall_clock=lambda: WALL + clock.now, max_series=50,
                            prices={"sonnet": (3e-6, 15e-6, 0.3e-6), "haiku": (1e-6, 5e-6, None)})
    aggregator.connect()
    yield aggregator
    aggregator.disconnect()


def values(agg: Aggregator, spec: MetricSpec) -> dict[tuple[str, ...], object]:
    (family,) = agg.collect([spec])
    return {sample.labels: sample.value for sample in family.samples}


def age(agg: Aggregator, spec: MetricSpec, clock: FakeClock, *labels: str) -> float:
    """``time() - gauge``, as an alert reads it."""
    return WALL + clock.now - values(agg, spec)[labels]


def test_timestamps_stay_put_between_collections_until_the_wall_clock_is_set(
        clock: FakeClock) -> None:
    wall = [WALL]
    agg = Aggregator(clock=clock, wall_clock=lambda: wall[0] + clock.now)
    agg.connect()
    try:
        send("state_saved", duration_s=0.1, size_bytes=1)
        saved = values(agg, cat.STATE_LAST_SAVE)
        wall[0] += 0.0004  # jitter between two readings of the clocks
        assert values(agg, cat.STATE_LAST_SAVE) == saved == {(): WALL + clock.now}
        wall[0] += 30.0  # the wall clock was set forward
        assert values(agg, cat.STATE_LAST_SAVE) == {(): WALL + 30.0004 + clock.now}
    finally:
        agg.disconnect()


# -- stalls ----------------------------------------------------------------------------

def test_last_event_is_per_active_agent_and_moves_with_every_event_naming_it(
        agg: Aggregator, clock: FakeClock) -> None:
    send("decision_made", agent="pm", decision_type="scope", duration_s=0.1)
    assert values(agg, cat.AGENT_LAST_EVENT) == {}  # not active: no series
    send("agent_activated", agent="pm")
    send("agent_activated", agent="dev")
    clock.advance(100)
    assert age(agg, cat.AGENT_LAST_EVENT, clock, "pm") == 100
    for signal, fields in [
        ("decision_made", {"decision_type": "scope", "duration_s": 0.1}),
        ("error_occurred", {"error_type": "Timeout"}),
        ("safety_blocked", {"rule": "no-rm"}),
        ("context_updated", {"items": 1, "tokens": 10}),
        ("context_refreshed", {"duration_s": 0.1}),
        ("llm_called", {"model": "m", "duration_s": 1.0, "input_tokens": 1,
                        "output_tokens": 1}),
        ("tool_completed", {"tool": "grep", "duration_s": 0.1}),
    ]:
        clock.advance(10)
        send(signal, agent="pm", **fields)
        assert age(agg, cat.AGENT_LAST_EVENT, clock, "pm") == 0, signal
    clock.advance(5)
    send("handoff_completed", from_agent="dev", to_agent="qa", duration_s=0.1)
    send("handoff_completed", from_agent="dev", to_agent="qa", duration_s=0.1)  # fast path
    clock.advance(5)
    send("handoff_started", from_agent="qa", to_agent="pm")
    assert age(agg, cat.AGENT_LAST_EVENT, clock, "pm") == 0
    assert age(agg, cat.AGENT_LAST_EVENT, clock, "dev") == 5
    assert ("qa",) not in values(agg, cat.AGENT_LAST_EVENT)
    send("agent_deactivated", agent="pm")
    assert set(values(agg, cat.AGENT_LAST_EVENT)) == {("dev",)}


def test_a_stall_outside_a_tool_call_has_no_tool_call_series(
        agg: Aggregator, clock: FakeClock) -> None:
    send("agent_activated", agent="pm")
    send("tool_completed", agent="pm", tool="grep", duration_s=0.5)  # no start: fine
    clock.advance(600)
    assert age(agg, cat.AGENT_LAST_EVENT, clock, "pm") == 600
    assert values(agg, cat.AGENT_TOOL_CALL_STARTED) == {}


def test_a_stall_inside_a_tool_call_exports_the_oldest_open_start(
        agg: Aggregator, clock: FakeClock) -> None:
    send("agent_activated", agent="pm")
    send("tool_started", agent="pm", tool="build")
    clock.advance(60)
    send("tool_started", agent="pm", tool="test")
    clock.advance(1200)
    assert age(agg, cat.AGENT_TOOL_CALL_STARTED, clock, "pm") == 1260
    assert age(agg, cat.AGENT_LAST_EVENT, clock, "pm") == 1200
    send("tool_completed", agent="pm", tool="build", duration_s=1260.0)
    assert age(agg, cat.AGENT_TOOL_CALL_STARTED, clock, "pm") == 1200  # "test" is open
    send("tool_completed", agent="pm", tool="test", duration_s=1200.0)
    assert values(agg, cat.AGENT_TOOL_CALL_STARTED) == {}
    send("tool_started", agent="pm", tool="deploy")
    send("agent_deactivated", agent="pm")  # a deactivated agent is in no tool call
    assert values(agg, cat.AGENT_TOOL_CALL_STARTED) == {}


def test_open_tool_calls_are_bounded_per_agent_and_counted(agg: Aggregator) -> None:
    for _ in range(MAX_OPEN_TOOL_CALLS + 5):
        send("tool_started", agent="pm", tool="build")
    agg.run_pending()  # the queued events recorded before the tables are read
    assert len(agg.state.ops.open_tools["pm"]) == MAX_OPEN_TOOL_CALLS
    assert agg.value(cat.DROPPED, ("operations", "tool_calls_full")) == 5


def test_an_agent_with_a_name_longer_than_a_label_is_not_tracked(
        agg: Aggregator, clock: FakeClock) -> None:
    long_name = "agent-" + "x" * 500
    send("agent_activated", agent=long_name)
    send("tool_started", agent=long_name, tool="build")
    clock.advance(30)
    send("decision_made", agent=long_name, decision_type="d", duration_s=0.1)
    assert values(agg, cat.AGENT_LAST_EVENT) == {}  # no series that could only go stale
    ((label,),) = values(agg, cat.AGENT_TOOL_CALL_STARTED)  # its hash, never the name
    assert label.startswith("#") and len(label) == 17
    assert agg.value(cat.AGENTS_ACTIVE) == 1


# -- loops -----------------------------------------------------------------------------

def handoff(source: str, target: str, workflow_id: str | None = "wf") -> None:
    fields = {} if workflow_id is None else {"workflow_id": workflow_id}
    send("handoff_completed", from_agent=source, to_agent=target, duration_s=0.1, **fields)


def test_ping_pong_counts_a_loop_for_the_agent_returned_to(agg: Aggregator) -> None:
    handoff("A", "B")
    assert values(agg, cat.HANDOFF_LOOPS) == {}
    handoff("B", "A")
    assert values(agg, cat.HANDOFF_LOOPS) == {("A",): 1.0}
    handoff("A", "B")  # the pair is now remembered: this one takes the fast path
    handoff("B", "A")
    assert values(agg, cat.HANDOFF_LOOPS) == {("A",): 2.0, ("B",): 1.0}


def test_a_three_cycle_counts_one_loop_when_it_closes(agg: Aggregator) -> None:
    handoff("A", "B")
    handoff("B", "C")
    assert values(agg, cat.HANDOFF_LOOPS) == {}
    handoff("C", "A")
    assert values(agg, cat.HANDOFF_LOOPS) == {("A",): 1.0}


def test_loops_are_per_workflow_and_forgotten_when_it_ends(agg: Aggregator) -> None:
    handoff("A", "B", "wf-1")
    handoff("B", "A", "wf-2")  # another workflow never left A
    handoff("X", "Y", None)
    handoff("Y", "X", None)  # the anonymous workflow
    assert values(agg, cat.HANDOFF_LOOPS) == {("X",): 1.0}
    send("workflow_completed", workflow_id="wf-1", duration_s=1.0)
    handoff("B", "A", "wf-1")
    assert values(agg, cat.HANDOFF_LOOPS) == {("X",): 1.0}
    assert set(agg.state.ops.loops.windows) == {"wf-1", "wf-2", None}


def test_a_return_outside_the_loop_window_is_no_loop(clock: FakeClock) -> None:
    agg = Aggregator(clock=clock, loop_window=2)
    agg.connect()
    try:
        for source, target in [("A", "B"), ("B", "C"), ("C", "D"), ("D", "A")]:
            handoff(source, target)
        assert values(agg, cat.HANDOFF_LOOPS) == {}
        handoff("A", "D")  # D was left one handoff ago
        assert values(agg, cat.HANDOFF_LOOPS) == {("D",): 1.0}
    finally:
        agg.disconnect()


def test_loop_windows_are_capped_oldest_first(clock: FakeClock) -> None:
    agg = Aggregator(clock=clock, max_workflows_in_flight=3)
    agg.connect()
    try:
        for number in range(5):
            handoff("A", "B", f"wf-{number}")
        agg.run_pending()  # the queued events recorded before the tables are read
        assert list(agg.state.ops.loops.windows) == ["wf-2", "wf-3", "wf-4"]
        assert agg.value(cat.DROPPED, ("operations", "loop_window_evicted")) == 2
    finally:
        agg.disconnect()


# -- repeats ---------------------------------------------------------------------------

def tool_call(call_key: str | None, tool: str = "search", agent: str = "dev") -> None:
    fields = {} if call_key is None else {"call_key": call_key}
    send("tool_completed", agent=agent, tool=tool, duration_s=0.2, **fields)


def test_the_same_call_three_times_in_a_row_repeats(agg: Aggregator) -> None:
    tool_call("k")
    tool_call("k")
    assert values(agg, cat.TOOL_CALL_REPEATS) == {}
    tool_call("k")
    assert values(agg, cat.TOOL_CALL_REPEATS) == {("dev", "search"): 1.0}
    tool_call("k")
    assert values(agg, cat.TOOL_CALL_REPEATS) == {("dev", "search"): 2.0}


def test_a_different_call_key_breaks_the_run(agg: Aggregator) -> None:
    for key in ("k", "k", "other", "k", "k"):
        tool_call(key)
    assert values(agg, cat.TOOL_CALL_REPEATS) == {}
    tool_call("k")
    assert values(agg, cat.TOOL_CALL_REPEATS) == {("dev", "search"): 1.0}


def test_a_call_without_key_or_to_another_tool_breaks_the_run(agg: Aggregator) -> None:
    for key in ("k", "k", None, "k", "k"):
        tool_call(key)
    tool_call("k", tool="fetch")
    tool_call("k")
    assert values(agg, cat.TOOL_CALL_REPEATS) == {}
    tool_call("k", agent="qa")  # other agents' calls are their own runs
    tool_call("k")
    assert values(agg, cat.TOOL_CALL_REPEATS) == {}


# -- workflows, mode, state saves --------------------------------------------------------

def test_oldest_workflow_after_completions_out_of_order(
        agg: Aggregator, clock: FakeClock) -> None:
    assert values(agg, cat.WORKFLOW_OLDEST_START) == {(): 0.0}
    starts = {}
    for workflow in ("w1", "w2", "w3"):
        starts[workflow] = WALL + clock.now
        send("workflow_started", workflow_id=workflow)
        clock.advance(10)
    send("workflow_started", workflow_id="w1")  # a second start keeps the first
    assert values(agg, cat.WORKFLOWS_IN_FLIGHT) == {(): 3.0}
    send("workflow_completed", workflow_id="w2", duration_s=10.0)
    assert values(agg, cat.WORKFLOW_OLDEST_START) == {(): starts["w1"]}
    send("workflow_failed", workflow_id="w1", duration_s=30.0, error_type="Crash")
    assert values(agg, cat.WORKFLOW_OLDEST_START) == {(): starts["w3"]}
    send("workflow_completed", workflow_id="unknown", duration_s=1.0)
    send("workflow_completed", workflow_id="w3", duration_s=10.0)
    assert values(agg, cat.WORKFLOW_OLDEST_START) == {(): 0.0}
    assert values(agg, cat.WORKFLOWS_IN_FLIGHT) == {(): 0.0}


def test_workflows_in_flight_are_capped_and_the_oldest_stay(clock: FakeClock) -> None:
    agg = Aggregator(clock=clock, wall_clock=lambda: WALL + clock.now,
                     max_workflows_in_flight=2)
    agg.connect()
    try:
        first = WALL + clock.now
        for number in range(4):
            send("workflow_started", workflow_id=f"w{number}")
            clock.advance(1)
        assert values(agg, cat.WORKFLOWS_IN_FLIGHT) == {(): 2.0}
        assert values(agg, cat.WORKFLOW_OLDEST_START) == {(): first}
        assert agg.value(cat.DROPPED, ("operations", "workflows_in_flight_full")) == 2
    finally:
        agg.disconnect()


def test_mode_time_includes_the_current_mode_and_the_change_time(
        agg: Aggregator, clock: FakeClock) -> None:
    started = WALL + clock.now
    clock.advance(5)
    assert values(agg, cat.MODE_CHANGED) == {(): started}
    send("mode_changed", mode="paused")
    clock.advance(10)
    send("mode_changed", mode="paused")  # not a change: paused since 10 s ago
    clock.advance(20)
    assert values(agg, cat.MODE_CHANGED) == {(): started + 5}
    assert values(agg, cat.MODE_TIME) == {("active",): 5.0, ("paused",): 30.0,
                                          ("degraded",): 0.0, ("stopped",): 0.0}
    send("mode_changed", mode="active")
    clock.advance(1)
    assert values(agg, cat.MODE_TIME)[("active",)] == 6.0
    assert values(agg, cat.MODE_TIME)[("paused",)] == 30.0


def test_last_state_save(agg: Aggregator, clock: FakeClock) -> None:
    assert values(agg, cat.STATE_LAST_SAVE) == {(): 0.0}
    clock.advance(7)
    send("state_saved", duration_s=0.01, size_bytes=100)
    send("state_loaded", duration_s=0.01, size_bytes=100)
    clock.advance(100)
    assert age(agg, cat.STATE_LAST_SAVE, clock) == 100


# -- LLM and tool call metrics -------------------------------------------------------------

def histogram(agg: Aggregator, spec: MetricSpec, *labels: str) -> HistogramValue:
    value = values(agg, spec)[labels]
    assert isinstance(value, HistogramValue)
    return value


def test_llm_calls_tokens_errors_and_cost(agg: Aggregator) -> None:
    send("llm_called", agent="dev", model="sonnet", duration_s=2.0, input_tokens=1000,
         output_tokens=200, cached_input_tokens=400)
    send("llm_called", agent="dev", model="sonnet", duration_s=1.0, input_tokens=10,
         output_tokens=0, cost_usd=0.5, error_type="RateLimited", provider="anthropic")
    send("llm_called", agent="dev", model="unpriced", duration_s=1.0, input_tokens=5,
         output_tokens=5)
    assert values(agg, cat.LLM_CALLS) == {("dev", "sonnet"): 2.0, ("dev", "unpriced"): 1.0}
    assert values(agg, cat.LLM_ERRORS) == {("dev", "sonnet", "RateLimited"): 1.0}
    assert histogram(agg, cat.LLM_TOKEN_USAGE, "dev", "sonnet", "input").sum == 1010
    assert histogram(agg, cat.LLM_TOKEN_USAGE, "dev", "sonnet", "output").sum == 200
    assert histogram(agg, cat.LLM_TOKEN_USAGE, "dev", "sonnet", "cached_input").sum == 400
    assert histogram(agg, cat.LLM_CALL_DURATION, "dev", "sonnet").count == 2
    # 600 input at $3, 400 cached at $0.30, 200 output at $15 per million; then $0.50 sent
    assert values(agg, cat.LLM_COST) == {
        ("dev", "sonnet"): pytest.approx(600 * 3e-6 + 400 * 0.3e-6 + 200 * 15e-6 + 0.5)}


def test_cached_input_costs_the_input_price_without_its_own(agg: Aggregator) -> None:
    send("llm_called", agent="dev", model="haiku", duration_s=1.0, input_tokens=100,
         output_tokens=10, cached_input_tokens=50)
    assert values(agg, cat.LLM_COST) == {("dev", "haiku"): pytest.approx(100e-6 + 50e-6)}


def test_tool_calls_durations_and_errors(agg: Aggregator) -> None:
    send("tool_completed", agent="dev", tool="pytest", duration_s=3.0)
    send("tool_completed", agent="dev", tool="pytest", duration_s=1.0, error_type="Exit1")
    assert values(agg, cat.TOOL_CALLS) == {("dev", "pytest"): 2.0}
    assert values(agg, cat.TOOL_ERRORS) == {("dev", "pytest", "Exit1"): 1.0}
    assert histogram(agg, cat.TOOL_CALL_DURATION, "dev", "pytest").sum == 4.0


def test_prices_come_from_the_operations_config(start_telemetry) -> None:  # type: ignore[no-untyped-def]
    tel = start_telemetry({"operations": {"prices": {
        "m": {"input_per_mtok": 2.0, "output_per_mtok": 10.0}}}})
    send("llm_called", agent="a", model="m", duration_s=1.0, input_tokens=1_000_000,
         output_tokens=100_000)
    assert tel.aggregator.value(cat.LLM_COST, ("a", "m")) == pytest.approx(3.0)


# -- payload checks ------------------------------------------------------------------------

@pytest.mark.parametrize(("signal", "fields", "reason"), [
    ("llm_called", {"cost_usd": -1.0}, "cost_usd:negative"),
    ("llm_called", {"cost_usd": float("nan")}, "cost_usd:not_finite"),
    ("llm_called", {"cost_usd": "1"}, "cost_usd:wrong_type"),
    ("llm_called", {"cached_input_tokens": 1.5}, "cached_input_tokens:not_integer"),
    ("llm_called", {"input_tokens": -1}, "input_tokens:negative"),
    ("llm_called", {"model": ""}, "model:empty"),
    ("llm_called", {"model": None}, "model:missing"),
    ("llm_called", {"provider": 3}, "provider:wrong_type"),
    ("tool_completed", {"call_key": b"bytes"}, "call_key:wrong_type"),
    ("tool_completed", {"duration_s": -0.1}, "duration_s:negative"),
    ("tool_started", {"tool": ["x"]}, "tool:wrong_type"),
    ("tool_started", {"call_key": 12}, "call_key:wrong_type"),
])
def test_invalid_fields_are_counted_and_change_nothing(
        agg: Aggregator, signal: str, fields: dict, reason: str) -> None:
    valid = {
        "llm_called": {"agent": "a", "model": "m", "duration_s": 1.0, "input_tokens": 1,
                       "output_tokens": 1},
        "tool_completed": {"agent": "a", "tool": "t", "duration_s": 1.0},
        "tool_started": {"agent": "a", "tool": "t"},
    }[signal]
    send(signal, **{**valid, **fields})
    assert agg.invalid_events() == {(f"yolo.{signal}", reason): 1}
    assert values(agg, cat.LLM_CALLS) == values(agg, cat.TOOL_CALLS) == {}
    assert agg.state.ops.open_tools == {}


def test_a_cost_may_be_an_int_and_a_call_key_any_str(agg: Aggregator) -> None:
    class Key(str):
        def __hash__(self) -> int:
            raise RuntimeError("a hostile hash")

    send("llm_called", agent="a", model="m", duration_s=1.0, input_tokens=1,
         output_tokens=1, cost_usd=2)
    for key in ("", Key("k"), "k", "k"):
        tool_call(key)
    assert agg.invalid_events() == {}
    assert values(agg, cat.LLM_COST) == {("a", "m"): 2.0}
    assert values(agg, cat.TOOL_CALL_REPEATS) == {("dev", "search"): 1.0}  # Key("k") is "k"


# -- hostile input ---------------------------------------------------------------------------

def test_100000_tool_names_and_models_stay_within_the_series_cap(clock: FakeClock) -> None:
    agg = Aggregator(clock=clock, max_series=1000)
    agg.connect()
    try:
        for number in range(100_000):
            send("tool_started", agent=f"agent-{number}", tool=f"tool-{number}")
            send("tool_completed", agent="dev", tool=f"tool-{number}", duration_s=0.1,
                 call_key=f"key-{number}")
            send("llm_called", agent="dev", model=f"model-{number}", duration_s=0.1,
                 input_tokens=1, output_tokens=1, error_type=f"E{number}")
        for spec in cat.CATALOGUE:
            if not spec.self_metric:
                assert agg.series_count(spec) <= 1001, spec.name  # + the overflow series
        ops = agg.state.ops
        assert len(ops.open_tools) == 1000 and len(ops.runs.last) == 1
        assert agg.value(cat.TOOL_CALLS, ("__overflow__", "__overflow__")) == 99_000
        assert agg.value(cat.DROPPED, ("operations", "tool_calls_full")) == 99_000
    finally:
        agg.disconnect()


def test_a_1mb_call_key_or_name_is_not_stored(agg: Aggregator) -> None:
    def table_items() -> list[object]:
        """Every key and value the operator tables hold, one level into containers."""
        ops = agg.state.ops
        tables = (ops.runs.last, ops.open_tools, ops.loops.windows, ops.in_flight,
                  ops.last_seen)
        items: list[object] = []
        for table in tables:
            for key, value in table.items():
                items += [key, value, *(value if isinstance(value, list | tuple) else ()),
                          *(list(value) if hasattr(value, "maxlen") else ())]
        return items

    def reachable_bytes() -> int:
        gc.collect()
        return sum(sys.getsizeof(item) for item in table_items())

    before = reachable_bytes()
    tracemalloc.start()
    try:
        for number in range(20):
            key = f"{number}-" + "x" * 1_000_000
            send("tool_started", agent="dev", tool="search", call_key=key)
            send("tool_completed", agent="dev", tool="search", duration_s=0.1, call_key=key)
            # names are capped or hashed in the operator tables, whatever their length
            send("workflow_started", workflow_id=key)
            send("handoff_completed", from_agent=key, to_agent="x" + key, duration_s=0.1,
                 workflow_id=key)
            send("tool_started", agent=key, tool=key)
            del key
        agg.run_pending()  # a queued event's payload lives until its batch is recorded
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 300_000  # 80 MB of keys and names went through; none stayed
    assert reachable_bytes() - before < 50_000  # 60 entries, none holding a long text
    assert max(len(item) for item in table_items() if isinstance(item, str)) <= 128
    ((_, run),) = agg.state.ops.runs.last.values()
    assert run == 1  # each key differed: no run, and nothing but a hash was kept
    assert all(type(value) is int for value in agg.state.ops.runs.last["dev"])


# -- over /metrics ---------------------------------------------------------------------------

def test_the_scrape_has_the_operator_families_with_their_types(start_telemetry) -> None:  # type: ignore[no-untyped-def]
    tel = start_telemetry()
    send("agent_activated", agent="dev")
    send("tool_started", agent="dev", tool="build")
    send("llm_called", agent="dev", model="m", duration_s=1.0, input_tokens=10,
         output_tokens=2, cost_usd=0.25)
    send("mode_changed", mode="paused")
    before = time.time()
    families = {family.name: family for family in
                text_string_to_metric_families(get_text(f"{tel.url}/metrics"))}
    expected_types = {
        "yolo_llm_cost_usd": "counter", "yolo_llm_token_usage": "histogram",
        "yolo_mode_seconds": "counter", "yolo_agent_last_event_timestamp_seconds": "gauge",
        "yolo_agent_tool_call_started_timestamp_seconds": "gauge",
        "yolo_workflow_oldest_start_timestamp_seconds": "gauge",
        "yolo_mode_changed_timestamp_seconds": "gauge",
    }
    assert {name: families[name].type for name in expected_types} == expected_types

    def sample(family: str, suffix: str = "", **labels: str) -> float:
        (value,) = [s.value for s in families[family].samples
                    if s.name == family + suffix and s.labels == labels]
        return value

    assert sample("yolo_llm_cost_usd", "_total", agent="dev", model="m") == 0.25
    assert sample("yolo_llm_token_usage", "_sum", agent="dev", model="m",
                  token_type="input") == 10
    for family in ("yolo_agent_last_event_timestamp_seconds",
                   "yolo_agent_tool_call_started_timestamp_seconds"):
        assert before - 60 < sample(family, agent="dev") <= before + 1
    assert sample("yolo_mode_changed_timestamp_seconds") <= before + 1
    assert sample("yolo_workflow_oldest_start_timestamp_seconds") == 0
