"""Forked children and multiprocessing workers get telemetry of their own."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable

import pytest

import telemetry
from telemetry import Telemetry
from tests.conftest import send

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def _child_work() -> tuple[int, int, str]:
    """Start fresh telemetry in the child, count events, report what it saw."""
    with telemetry.start({"server": {"port": 0}}) as tel:
        for _ in range(500):
            send("safety_blocked", agent="child", rule="r")
        agent, _ = tel.snapshot()
        return agent.safety_blocks, tel.server.port, tel.instance_id


def test_forked_child_while_parent_threads_hold_the_lock(
    start_telemetry: Callable[..., Telemetry],
) -> None:
    parent = start_telemetry()
    stop = threading.Event()

    def hammer() -> None:  # keeps the aggregator lock busy so a fork likely catches it held
        while not stop.is_set():
            send("safety_blocked", agent="parent", rule="r")

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            status = 1
            try:
                os.close(read)
                assert parent.state == "forked"
                blocks, port, instance = _child_work()
                ok = blocks == 500 and port != parent.server.port
                ok = ok and instance != parent.instance_id
                os.write(write, f"{blocks} {port}".encode())
                status = 0 if ok else 3
            finally:
                os._exit(status)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        report = os.read(read, 100).decode()
        os.close(read)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert os.waitstatus_to_exitcode(status) == 0, report
    assert report.startswith("500 ")
    assert parent.state == "running"  # the parent is untouched
    assert parent.snapshot()[0].safety_blocks_by_rule["r"] > 0


def _pool_task(_: int) -> tuple[int, int]:
    blocks, port, _ = _child_work()
    return blocks, port


def test_multiprocessing_fork_workers(start_telemetry: Callable[..., Telemetry]) -> None:
    parent = start_telemetry()
    send("safety_blocked", agent="parent", rule="r")
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        results = pool.map(_pool_task, range(4), chunksize=1)
    assert [blocks for blocks, _ in results] == [500] * 4
    assert all(port != parent.server.port for _, port in results)
    assert parent.snapshot()[0].safety_blocks == 1  # children's events stay theirs
