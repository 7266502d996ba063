"""/debug/profile on a demo under load, its error cases, the CLI client and /health overhead."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from telemetry import Telemetry
from telemetry import catalogue as cat
from telemetry.cli.main import main
from telemetry.cli.simulator import ReferenceOrchestrator
from tests.conftest import send

TOKEN = "profiling-test-token-0123456789"
ORCHESTRATOR_FUNCTIONS = {"ReferenceOrchestrator.run", "ReferenceOrchestrator.run_workflow",
                          "ReferenceOrchestrator._run_agent"}
FOLDED_LINE = re.compile(r"^(?P<stack>[^ ].*) (?P<count>\d+)$")


def request(url: str, token: str | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def burn_cpu() -> None:
    total = 0
    for i in range(3000):
        total += i * i


@pytest.fixture
def demo(start_telemetry) -> Iterator[tuple[Telemetry, threading.Thread]]:
    """Telemetry with debug on, and the reference orchestrator running in its own thread."""
    tel = start_telemetry(debug={"enabled": True, "profile_max_seconds": 5})
    stop = threading.Event()
    orchestrator = ReferenceOrchestrator(seed=6, work=burn_cpu, stop_event=stop)
    worker = threading.Thread(target=orchestrator.run, kwargs={"duration_s": 60},
                              name="reference-orchestrator", daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while orchestrator.stats.events < 50:  # running and known as a signal-sending thread
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield tel, worker
    stop.set()
    worker.join(10)


def check_speedscope(document: dict) -> set[str]:
    """Validate the speedscope file's structure; return the frame names."""
    assert document["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = document["shared"]["frames"]
    assert all(isinstance(f["name"], str) and f["name"] for f in frames)
    assert document["profiles"], "no thread was sampled"
    for profile in document["profiles"]:
        assert profile["type"] == "sampled"
        assert profile["unit"] == "seconds"
        assert len(profile["samples"]) == len(profile["weights"])
        assert all(0 <= i < len(frames) for stack in profile["samples"] for i in stack)
        assert all(w > 0 for w in profile["weights"])
        assert profile["endValue"] == pytest.approx(sum(profile["weights"]), abs=1e-3)
    assert 0 <= document["activeProfileIndex"] < len(document["profiles"])
    return {frame["name"] for frame in frames}


def test_speedscope_profile_of_the_demo_under_load(demo):
    tel, worker = demo
    status, body, headers = request(f"{tel.url}/debug/profile?seconds=1")

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Disposition"].endswith('.speedscope.json"')
    document = json.loads(body)
    assert check_speedscope(document) >= ORCHESTRATOR_FUNCTIONS
    # The thread that sends signals comes first, and is the profile speedscope opens.
    first = document["profiles"][0]
    assert first["name"] == f"reference-orchestrator ({worker.ident})"
    assert len(first["samples"]) >= 20
    assert 0.8 <= first["endValue"] <= 1.5


def test_collapsed_stacks_of_the_demo_under_load(demo):
    tel, worker = demo
    status, body, headers = request(f"{tel.url}/debug/profile?seconds=1&format=collapsed")

    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    lines = body.decode().splitlines()
    assert lines
    orchestrator_samples = 0
    for line in lines:
        match = FOLDED_LINE.match(line)
        assert match, line
        frames = match["stack"].split(";")
        assert frames[0].startswith("thread ")
        assert all(frames)
        if frames[0] == f"thread reference-orchestrator ({worker.ident})":
            orchestrator_samples += int(match["count"])
            assert "ReferenceOrchestrator.run (" in match["stack"]
    assert orchestrator_samples >= 20


def test_orchestrator_threads_only(demo):
    tel, worker = demo
    status, body, _ = request(f"{tel.url}/debug/profile?seconds=0.5&threads=orchestrator")
    assert status == 200
    document = json.loads(body)
    assert check_speedscope(document) >= ORCHESTRATOR_FUNCTIONS
    assert [p["name"] for p in document["profiles"]] == [
        f"reference-orchestrator ({worker.ident})"]


def test_html_and_text_profiles(demo):
    tel, _ = demo
    status, body, _ = request(f"{tel.url}/debug/profile?seconds=0.3&format=html")
    assert status == 200
    assert b"<html" in body.lower() or b"<!doctype html" in body.lower()
    status, body, _ = request(f"{tel.url}/debug/profile?seconds=0.3&format=text")
    assert status == 200
    assert "ReferenceOrchestrator.run_workflow" in body.decode()


def test_html_without_pyinstrument_is_501(start_telemetry, monkeypatch):
    from telemetry.profiling import render

    tel = start_telemetry(debug={"enabled": True})
    monkeypatch.setattr(render, "pyinstrument_available", lambda: False)
    status, body, _ = request(f"{tel.url}/debug/profile?seconds=5&format=html")
    assert status == 501
    assert b"yolo-telemetry[profiling]" in body
    assert request(f"{tel.url}/debug/profile?seconds=0.1&format=collapsed")[0] == 200


@pytest.mark.parametrize("query", ["seconds=0", "seconds=-1", "seconds=abc", "seconds=5.5",
                                   "seconds=nan", "seconds=inf", "seconds=1&format=pprof",
                                   "seconds=1&threads=some"])
def test_bad_arguments_are_400(demo, query):
    tel, _ = demo
    started = time.monotonic()
    status, body, _ = request(f"{tel.url}/debug/profile?{query}")
    assert status == 400, body
    assert time.monotonic() - started < 1.0  # refused before sampling


def test_a_concurrent_profile_is_409(demo):
    tel, _ = demo
    first: list[int] = []
    runner = threading.Thread(
        target=lambda: first.append(request(f"{tel.url}/debug/profile?seconds=1.5")[0]))
    runner.start()
    deadline = time.monotonic() + 5
    while not tel.profiling.busy:
        assert time.monotonic() < deadline, "the first profile never started"
        time.sleep(0.005)
    status, body, _ = request(f"{tel.url}/debug/profile?seconds=1")
    runner.join(10)

    assert status == 409, body
    assert first == [200]
    assert request(f"{tel.url}/debug/profile?seconds=0.1")[0] == 200  # free again


def test_debug_routes_honour_the_server_auth(start_telemetry):
    tel = start_telemetry(debug={"enabled": True},
                          server={"port": 0, "auth": {"bearer_token": TOKEN}})
    assert request(f"{tel.url}/debug/profile?seconds=0.1")[0] == 401
    assert request(f"{tel.url}/debug/slow")[0] == 401
    assert request(f"{tel.url}/debug/profile?seconds=0.1", TOKEN)[0] == 200
    assert request(f"{tel.url}/debug/slow", TOKEN)[0] == 200


def test_cli_fetches_a_profile_to_a_file(demo, tmp_path, capsys):
    tel, _ = demo
    output = tmp_path / "orchestrator.speedscope.json"
    assert main(["profile", tel.url, "--seconds", "0.5", "-o", str(output)]) == 0
    assert check_speedscope(json.loads(output.read_text())) >= ORCHESTRATOR_FUNCTIONS
    assert "speedscope.app" in capsys.readouterr().err

    folded = tmp_path / "orchestrator.txt"
    assert main(["profile", f"{tel.url}/debug/profile", "-s", "0.3", "-f", "collapsed",
                 "-o", str(folded)]) == 0
    assert all(FOLDED_LINE.match(line) for line in folded.read_text().splitlines())


def test_cli_explains_failures(start_telemetry, tmp_path, capsys):
    plain = start_telemetry()
    assert main(["profile", plain.url, "-s", "0.1", "-o", str(tmp_path / "x")]) == 1
    assert "debug.enabled" in capsys.readouterr().err

    guarded = start_telemetry(debug={"enabled": True},
                              server={"port": 0, "auth": {"bearer_token": TOKEN}})
    assert main(["profile", guarded.url, "-s", "0.1", "-o", str(tmp_path / "y")]) == 1
    assert "--token" in capsys.readouterr().err
    assert main(["profile", guarded.url, "-s", "0.1", "--token", TOKEN,
                 "-o", str(tmp_path / "y")]) == 0
    assert main(["profile", guarded.url, "-s", "99", "--token", TOKEN,
                 "-o", str(tmp_path / "z")]) == 1
    assert "profile_max_seconds" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()


def test_health_reports_a_plausible_overhead_estimate(start_telemetry):
    tel = start_telemetry(server={"enabled": False})
    events = 64 * 200
    started = time.perf_counter()
    for i in range(events):
        send("handoff_completed", from_agent="pm", to_agent="dev", duration_s=0.001 * (i % 7))
    elapsed = time.perf_counter() - started

    overhead = tel.health()["checks"]["overhead"]
    handler_s = tel.aggregator.value(cat.HANDLER_TIME)
    assert overhead["status"] == "ok"
    assert overhead["events"] == events
    assert overhead["handler_seconds"] == pytest.approx(handler_s, abs=1e-6)
    assert handler_s > 0
    # The estimate is handling only: below the whole send loop, and at least 50 ns per event.
    assert events * 50e-9 < handler_s < elapsed
    assert 0.05 < overhead["per_event_us"] < elapsed / events * 1e6
    assert 0 < overhead["share_of_cpu"] < 1
    assert tel.health()["status"] == "healthy"
