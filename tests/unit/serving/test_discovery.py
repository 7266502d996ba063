"""Per-process identity: port ranges, file_sd registration and its cleanup."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from telemetry import Telemetry
from telemetry.config import ConfigError
from telemetry.serving.discovery import FileSdRegistration, advertised_address


def test_port_range_takes_the_first_free_port(start_telemetry: Callable[..., Telemetry]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        first = probe.getsockname()[1]
    if first > 65000:
        pytest.skip("no room for a range above the free port")
    a = start_telemetry(server={"port_range": [first, first + 5]})
    b = start_telemetry(server={"port_range": [first, first + 5]})
    assert a.server.port != b.server.port
    assert first <= a.server.port <= first + 5 and first <= b.server.port <= first + 5


def test_a_full_port_range_is_a_clear_error(start_telemetry: Callable[..., Telemetry]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=r"server\.port_range: every port"):
            start_telemetry(server={"port_range": [port, port]})


def test_registration_writes_and_removes_the_target(
    start_telemetry: Callable[..., Telemetry], tmp_path: Path,
) -> None:
    tel = start_telemetry(discovery={"file_sd_dir": str(tmp_path), "labels": {"role": "worker"}})
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    [group] = json.loads(files[0].read_text())
    assert group["targets"] == [f"127.0.0.1:{tel.server.port}"]
    assert group["labels"]["role"] == "worker"
    assert group["labels"]["yolo_instance_id"] == tel.instance_id
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    tel.stop()
    assert not list(tmp_path.glob("*.json"))


def test_targets_of_dead_processes_are_pruned(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = dead.stdout.strip()
    stale = tmp_path / f"yolo-{dead_pid}-deadbeef.json"
    stale.write_text(json.dumps([{"targets": ["127.0.0.1:1"], "labels": {
        "hostname": socket.gethostname(), "pid": dead_pid}}]))
    other_host = tmp_path / "yolo-1-elsewhere.json"
    other_host.write_text(json.dumps([{"targets": ["h:1"], "labels": {
        "hostname": "another-host", "pid": "1"}}]))
    mine = FileSdRegistration(tmp_path, service="yolo", instance_id="abcdef123",
                              address="127.0.0.1:9")
    mine.register()
    assert not stale.exists()
    assert other_host.exists()  # a pid on another host says nothing here
    assert mine.path.exists() and str(os.getpid()) in mine.path.name


def test_advertised_address() -> None:
    assert advertised_address("127.0.0.1", 9464) == "127.0.0.1:9464"
    assert advertised_address("0.0.0.0", 9464) == f"{socket.gethostname()}:9464"
    assert advertised_address("0.0.0.0", 9464, "orchestrator-1") == "orchestrator-1:9464"
    assert advertised_address("::1", 9464) == "[::1]:9464"
