"""``yolo-telemetry watch-bmad`` as a user runs it: a subprocess following a project the
test rewrites, its /metrics polled with a deadline, stopped by SIGINT."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.adapters.support import sample
from tests.support import ROOT
from tests.unit.bmad.support import SNAPSHOTS, SPRINT_STATUS, write_in_place

DEADLINE_S = 30.0


def _env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("YOLO_TELEMETRY_CONFIG", "YOLO_TELEMETRY__", "OTEL_"))}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "telemetry", "watch-bmad", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env())


def _scrape_until(url: str, done: Callable[[str], bool], process: subprocess.Popen) -> str:
    """/metrics, scraped until ``done`` holds for it; fails at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        if done(metrics):
            return metrics
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, metrics
        time.sleep(0.05)


def _health_until(url: str, done: Callable[[dict], bool], process: subprocess.Popen) -> dict:
    """/health, fetched until ``done`` holds for it (any status code); fails at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
                document = json.load(response)
        except urllib.error.HTTPError as error:  # 503 when unhealthy: still the document
            document = json.load(error)
        if done(document):
            return document
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, document
        time.sleep(0.05)


def test_watch_bmad_follows_the_project_and_stops_on_sigint(tmp_path: Path) -> None:
    status = tmp_path / SPRINT_STATUS
    write_in_place(status, SNAPSHOTS[1].read_text())  # 1-1 ready for dev
    process = subprocess.Popen(
        [sys.executable, "-m", "telemetry", "watch-bmad", str(tmp_path), "--port", "0",
         "--interval", "0.05"],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stdout:  # type: ignore[union-attr]
            match = re.search(r"metrics: (http://\S+)/metrics", line)
            if match:
                url = match.group(1)
                break
        assert url, "watch-bmad did not print where /metrics is"
        # The baseline first (the mode), so that the next version is a move from it.
        _scrape_until(url, lambda m: sample(m, "yolo_mode", mode="active") == 1, process)
        write_in_place(status, SNAPSHOTS[2].read_text())  # dev picks 1-1 up
        metrics = _scrape_until(url, lambda m: sample(
            m, "yolo_handoffs_total", from_agent="sm", to_agent="dev") == 1, process)
        assert sample(metrics, "yolo_agents_active") == 1
        assert sample(metrics, "yolo_workflows_in_flight") == 1
        write_in_place(status, SNAPSHOTS[3].read_text())  # to review
        _scrape_until(url, lambda m: sample(
            m, "yolo_handoffs_total", from_agent="dev", to_agent="qa") == 1, process)
        # Caught mid-write. An in-place write may be caught empty as well: at least one.
        write_in_place(status, "development_status: [")
        _scrape_until(url, lambda m: sample(m, "yolo_telemetry_dropped_total",
                                            component="adapter_bmad",
                                            reason="unreadable") >= 1, process)
        write_in_place(status, SNAPSHOTS[4].read_text())  # bounced back to dev
        metrics = _scrape_until(url, lambda m: sample(
            m, "yolo_handoff_loops_total", agent="dev") == 1, process)
        assert sample(metrics, "yolo_handoffs_total", from_agent="qa", to_agent="dev") == 1
        status.unlink()
        _scrape_until(url, lambda m: sample(m, "yolo_telemetry_dropped_total",
                                            component="adapter_bmad",
                                            reason="file_missing") == 1, process)
        health = _health_until(url, lambda h: h["checks"]["bmad"]["status"] == "failing",
                               process)
        assert health["status"] == "degraded" and health["checks"]["bmad"]["file_missing"] == 1
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_once_reports_what_it_found(tmp_path: Path) -> None:
    write_in_place(tmp_path / SPRINT_STATUS, SNAPSHOTS[5].read_text())
    result = _run(str(tmp_path), "--once", "--port", "0")
    assert result.returncode == 0, result.stderr
    assert "2 epics, 5 stories (1 epics in flight), 0 unknown states" in result.stdout


def test_once_without_a_sprint_status_exits_1(tmp_path: Path) -> None:
    result = _run(str(tmp_path), "--once", "--port", "0")
    assert result.returncode == 1
    assert "no readable sprint status" in result.stdout


def test_a_missing_directory_and_a_bad_roles_file_exit_2(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "nope"), "--once")
    assert result.returncode == 2
    assert f"{tmp_path / 'nope'}: no such directory or file" in result.stderr
    roles = tmp_path / "roles.yaml"
    roles.write_text("states:\n  review: {works: maybe}\n")
    result = _run(str(tmp_path), "--once", "--roles", str(roles))
    assert result.returncode == 2
    assert (f"{roles}: states.review.works: expected true or false; found 'maybe'"
            in result.stderr)
    assert "Traceback" not in result.stderr


def test_a_bad_interval_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(str(tmp_path), "--interval", "0")
    assert result.returncode == 2
    assert "--interval: expected a finite number, more than 0" in result.stderr
