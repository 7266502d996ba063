"""telemetry.profiled: exact counts from sync, async and threaded code, bounded names."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import telemetry
from telemetry import catalogue as cat
from telemetry import profiled
from telemetry.aggregation.series import OVERFLOW_VALUE
from telemetry.model import HistogramValue


def operations(tel: telemetry.Telemetry) -> dict[str, HistogramValue]:
    (family,) = tel.aggregator.collect((cat.OPERATION_DURATION,))
    return {sample.labels[0]: sample.value for sample in family.samples}


@pytest.fixture
def tel(start_telemetry):
    return start_telemetry(server={"enabled": False})


def test_sync_decorator_counts_every_call_and_returns_the_value(tel):
    @profiled("render_prompt")
    def render(n: int) -> int:
        return n * 2

    results = [render(i) for i in range(37)]

    assert results == [i * 2 for i in range(37)]
    recorded = operations(tel)["render_prompt"]
    assert recorded.count == 37
    assert recorded.sum > 0
    assert render.__name__ == "render"


def test_a_raising_call_is_recorded_and_the_exception_propagates(tel):
    @profiled("tool_call")
    def fail() -> None:
        raise KeyError("boom")

    for _ in range(3):
        with pytest.raises(KeyError):
            fail()
    with pytest.raises(ValueError), profiled("block"):
        raise ValueError("inside")

    assert operations(tel)["tool_call"].count == 3
    assert operations(tel)["block"].count == 1


def test_context_manager_nested_and_reused_instances(tel):
    shared = profiled("outer")
    for _ in range(5):
        with shared, profiled("inner"):
            time.sleep(0.001)
    with shared, shared:  # the same object entered twice, nested
        pass

    recorded = operations(tel)
    assert recorded["outer"].count == 7
    assert recorded["inner"].count == 5
    assert recorded["inner"].sum >= 5 * 0.001
    assert recorded["outer"].sum >= recorded["inner"].sum


def test_blocks_left_out_of_order_by_a_generator(tel):
    def steps():
        with profiled("generator_block"):
            yield 1
            yield 2

    walk = steps()
    next(walk)  # enters generator_block
    with profiled("caller_block"):
        time.sleep(0.002)
        assert list(walk) == [2]  # leaves generator_block while caller_block is open
    with profiled("after"):
        pass

    recorded = operations(tel)
    assert recorded["generator_block"].count == 1
    assert recorded["caller_block"].count == 1
    assert recorded["caller_block"].sum >= 0.002
    assert recorded["after"].count == 1


def test_async_functions_and_blocks_count_exactly_under_interleaving(tel):
    @profiled("vector_search")
    async def search(delay: float) -> float:
        await asyncio.sleep(delay)
        return delay

    shared = profiled("async_block")

    async def block(delay: float) -> None:
        async with shared:  # one object, entered by 40 tasks at once
            await asyncio.sleep(delay)
        with profiled("sync_block_in_task"):
            await asyncio.sleep(0)

    async def main() -> list[float]:
        results = await asyncio.gather(*(search(0.001 * (i % 3)) for i in range(25)))
        await asyncio.gather(*(block(0.01) for _ in range(40)))
        return results

    results = asyncio.run(main())

    assert len(results) == 25
    recorded = operations(tel)
    assert recorded["vector_search"].count == 25
    assert recorded["async_block"].count == 40
    assert recorded["sync_block_in_task"].count == 40
    # Each task's own start time was used: every block lasted at least its sleep.
    assert recorded["async_block"].sum >= 40 * 0.01
    assert sum(recorded["async_block"].bucket_counts[:1]) == 0  # none under 5 ms


def test_threads_count_exactly(tel):
    shared = profiled("threaded")

    @profiled("threaded_fn")
    def work() -> None:
        with shared:
            pass

    def run() -> None:
        for _ in range(250):
            work()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    recorded = operations(tel)
    assert recorded["threaded_fn"].count == 1000
    assert recorded["threaded"].count == 1000


def test_no_running_telemetry_is_a_no_op(start_telemetry):
    @profiled("quiet")
    def answer() -> int:
        return 42

    async def coro() -> str:
        async with profiled("quiet_async"):
            return "done"

    assert telemetry.runtime.current() is None
    assert answer() == 42
    assert asyncio.run(coro()) == "done"
    with profiled("quiet_block"):
        pass

    tel = start_telemetry(server={"enabled": False})
    assert telemetry.runtime.current() is tel
    assert answer() == 42
    tel.stop()
    assert telemetry.runtime.current() is None
    assert answer() == 42
    assert set(operations(tel)) == {"quiet"}
    assert operations(tel)["quiet"].count == 1


def test_operation_names_are_bounded_by_the_series_limit(start_telemetry):
    tel = start_telemetry(server={"enabled": False}, limits={"max_series_per_metric": 5})
    for i in range(12):
        with profiled(f"op-{i}"):
            pass

    recorded = operations(tel)
    assert len(recorded) == 6
    assert recorded[OVERFLOW_VALUE].count == 7
    assert tel.aggregator.value(cat.SERIES_OVERFLOW, (cat.OPERATION_DURATION.name,)) == 7


def test_operations_reach_prometheus(start_telemetry):
    import urllib.request

    tel = start_telemetry()
    with profiled("load_plan"):
        pass
    body = urllib.request.urlopen(f"{tel.url}/metrics", timeout=5).read().decode()
    assert 'yolo_operation_duration_seconds_count{operation="load_plan"} 1\n' in body
