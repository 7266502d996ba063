"""Slow-operation capture: captured over the threshold, not below it, at most K kept."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from telemetry import ConfigError, load_config, profiled
from telemetry import catalogue as cat
from tests.conftest import send


def busy_handoff_step(seconds: float) -> None:
    """Burns CPU for ``seconds``: the function a capture must show."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sum(range(200))


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def slow_config(**slow: object) -> dict:
    settings = {"enabled": True, "threshold_s": 0.2, "sample_interval_s": 0.01,
                "max_per_minute": 100}
    settings.update(slow)
    return {"debug": {"enabled": True, "slow": settings}}


def run_in_thread(target, *args) -> None:
    """Run like an orchestrator thread would, and wait for it."""
    thread = threading.Thread(target=target, args=args, name="orchestrator-worker")
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


def handoff(seconds: float) -> None:
    send("handoff_started", from_agent="pm", to_agent="dev")
    started = time.perf_counter()
    busy_handoff_step(seconds)
    send("handoff_completed", from_agent="pm", to_agent="dev",
         duration_s=time.perf_counter() - started, workflow_id="wf-7")


def wait_for_sampler(tel, rounds: int = 2) -> None:
    sampler = tel.profiling.slow.sampler
    target = sampler.rounds + rounds
    deadline = time.monotonic() + 10
    while sampler.rounds < target:
        assert time.monotonic() < deadline, "the slow sampler never ran"
        time.sleep(0.005)


def test_a_slow_handoff_is_captured_listed_and_fetchable(start_telemetry):
    tel = start_telemetry(slow_config())
    wait_for_sampler(tel)

    run_in_thread(handoff, 0.4)

    listing = get_json(f"{tel.url}/debug/slow")
    assert listing["enabled"] is True
    assert listing["threshold_s"] == 0.2
    (capture,) = listing["captures"]
    assert capture["operation"] == "handoff"
    assert capture["labels"] == {"from_agent": "pm", "to_agent": "dev", "workflow_id": "wf-7"}
    assert capture["duration_s"] >= 0.4
    assert capture["thread"] == "orchestrator-worker"
    assert capture["samples"] >= 5
    assert capture["hot_functions"][0]["function"] == "busy_handoff_step"

    folded = get_text(f"{tel.url}{capture['path']}?format=collapsed")
    assert "busy_handoff_step" in folded
    assert all(line.rsplit(" ", 1)[1].isdigit() for line in folded.splitlines())
    document = get_json(f"{tel.url}{capture['path']}")
    assert document["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    names = {frame["name"] for frame in document["shared"]["frames"]}
    assert {"handoff", "busy_handoff_step"} <= names
    assert get_json(f"{tel.url}{capture['path']}?format=json")["id"] == capture["id"]


def test_a_waiting_operation_names_the_code_that_waits(start_telemetry):
    tel = start_telemetry(slow_config())
    wait_for_sampler(tel)

    def wait_for_tool_response() -> None:
        threading.Event().wait(0.3)  # like a blocking LLM or tool call

    def decide() -> None:
        send("agent_activated", agent="architect")
        started = time.perf_counter()
        wait_for_tool_response()
        send("decision_made", agent="architect", decision_type="tech_stack",
             duration_s=time.perf_counter() - started)

    run_in_thread(decide)

    (capture,) = tel.profiling.slow.captures()
    hot = capture.summary()["hot_functions"]
    assert hot[0]["function"] == "test_a_waiting_operation_names_the_code_that_waits.<locals>." \
                                 "wait_for_tool_response"
    assert hot[0]["share"] > 0.9


def test_operations_below_the_threshold_are_not_captured(start_telemetry):
    tel = start_telemetry(slow_config())
    wait_for_sampler(tel)

    run_in_thread(handoff, 0.05)
    send("decision_made", agent="pm", decision_type="scope", duration_s=0.19)
    send("handoff_completed", from_agent="pm", to_agent="qa", duration_s=0.1999)
    with profiled("quick"):
        pass

    assert tel.profiling.slow.captures() == []
    assert get_json(f"{tel.url}/debug/slow")["captures"] == []


def test_only_the_configured_operations_are_watched(start_telemetry):
    tel = start_telemetry(slow_config(operations=["decision"]))
    send("handoff_completed", from_agent="pm", to_agent="qa", duration_s=9.0)
    send("context_refreshed", agent="pm", duration_s=9.0)
    send("decision_made", agent="pm", decision_type="scope", duration_s=9.0)

    (capture,) = tel.profiling.slow.captures()
    assert capture.operation == "decision"
    assert capture.labels == {"agent": "pm", "decision_type": "scope"}


def test_the_capture_buffer_never_exceeds_k(start_telemetry):
    tel = start_telemetry(slow_config(max_captures=3))
    slow = tel.profiling.slow
    for i in range(10):
        send("handoff_completed", from_agent="pm", to_agent=f"agent-{i}", duration_s=1.0)
        assert len(slow.captures()) <= 3

    kept = slow.captures()
    assert [c.id for c in kept] == [10, 9, 8]
    assert [c.labels["to_agent"] for c in kept] == ["agent-9", "agent-8", "agent-7"]
    assert len(get_json(f"{tel.url}/debug/slow")["captures"]) == 3
    assert status_of(f"{tel.url}/debug/slow/1") == 404  # dropped from the buffer
    assert status_of(f"{tel.url}/debug/slow/10") == 200


def test_captures_past_the_rate_limit_are_counted_not_kept(start_telemetry):
    tel = start_telemetry(slow_config(max_per_minute=2))
    for _ in range(5):
        send("decision_made", agent="dev", decision_type="implement", duration_s=3.0)

    assert len(tel.profiling.slow.captures()) == 2
    assert tel.aggregator.value(cat.DROPPED, ("slow_capture", "rate_limited")) == 3


def test_a_slow_profiled_block_is_captured_with_its_own_start_and_end(start_telemetry):
    tel = start_telemetry(slow_config())

    def work() -> None:
        with profiled("warm_up"):  # any profiled block makes the thread watched
            pass
        wait_for_sampler(tel)
        with profiled("plan_sprint"):
            busy_handoff_step(0.3)

    run_in_thread(work)

    (capture,) = tel.profiling.slow.captures()
    assert capture.operation == "profiled"
    assert capture.labels == {"operation": "plan_sprint"}
    assert capture.duration_s >= 0.3
    assert capture.profile.hot_functions()[0]["function"] == "busy_handoff_step"
    # Samples come from within the block only.
    assert capture.profile.threads[0].seconds <= capture.duration_s + 0.05


def test_slow_listing_when_capture_is_off_and_unknown_ids(start_telemetry):
    tel = start_telemetry(debug={"enabled": True})
    listing = get_json(f"{tel.url}/debug/slow")
    assert listing["enabled"] is False
    assert listing["captures"] == []
    assert status_of(f"{tel.url}/debug/slow/1") == 404

    tel = start_telemetry(slow_config())
    assert status_of(f"{tel.url}/debug/slow/999") == 404
    assert status_of(f"{tel.url}/debug/slow/abc") == 404


def test_slow_capture_without_debug_is_a_config_error():
    with pytest.raises(ConfigError, match=r"debug\.slow\.enabled: .*debug\.enabled"):
        load_config({"debug": {"slow": {"enabled": True}}}, environ={})
    with pytest.raises(ConfigError, match=r"debug\.slow\.threshold_s"):
        load_config({"debug": {"enabled": True, "slow": {"threshold_s": 0}}}, environ={})


@pytest.mark.parametrize("path", ["/debug/slow", "/debug/profile?seconds=1"])
def test_debug_routes_are_absent_by_default(start_telemetry, path):
    tel = start_telemetry()
    assert tel.profiling is None
    assert status_of(f"{tel.url}{path}") == 404


def test_stopping_telemetry_stops_the_sampler(start_telemetry):
    tel = start_telemetry(slow_config())
    sampler_thread = tel.profiling.slow.sampler._thread
    assert sampler_thread is not None and sampler_thread.is_alive()
    assert tel.profiling._listener in tel.aggregator._followers.listeners
    tel.stop()
    assert not sampler_thread.is_alive()
    assert tel.profiling._listener not in tel.aggregator._followers.listeners


def test_thread_registry_makes_room_when_threads_end():
    from telemetry.profiling.stacks import SignalThreads

    registry = SignalThreads(max_threads=3)
    all_noted = threading.Barrier(3)

    def note_then_end() -> None:
        registry.note()
        all_noted.wait(10)  # alive together, so their ids differ

    threads = [threading.Thread(target=note_then_end) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(registry.idents()) == 3
    registry.note()  # full, but every tracked thread has ended: pruned, then added
    assert registry.idents() == [threading.get_ident()]
