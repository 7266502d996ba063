"""``yolo-telemetry top`` against the running reference orchestrator.

Telemetry runs in-process on a free port with the simulator 50 times faster than
real time (as the operations integration tests run it), and Textual's pilot drives
the view: sort, reverse, filter, pause, pick an instance, help, quit. ``--once`` and
``--json`` run as a user runs them, against ``yolo-telemetry demo --incident stall``.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from telemetry import Telemetry
from telemetry.cli.simulator import ReferenceOrchestrator
from telemetry.top.app import HelpScreen, TopApp
from telemetry.top.scrape import ScrapeSource
from tests.support.backends import free_port, wait_until
from tests.support.monitoring_tools import ROOT

TIME_SCALE = 0.02  # 50 simulated seconds per real second


@pytest.fixture
def running(start_telemetry: Callable[..., Telemetry]) -> Iterator[Telemetry]:
    """Telemetry on a free port, with the reference orchestrator sending to it."""
    tel = start_telemetry({"server": {"port": 0}})
    stop = threading.Event()
    orchestrator = ReferenceOrchestrator(seed=3, time_scale=TIME_SCALE, stop_event=stop)
    worker = threading.Thread(target=orchestrator.run, name="reference-orchestrator",
                              daemon=True)
    worker.start()
    yield tel
    stop.set()
    worker.join(10)


async def until(pilot: Any, condition: Callable[[], bool], within: float = 30.0,
                what: str = "condition") -> None:
    """Let the app run until ``condition`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await pilot.pause(0.05)


def shown_text(app: TopApp, selector: str) -> str:
    """What a Static of the app shows, as plain text."""
    widget = app.query_one(selector)
    content = getattr(widget, "content", None) or getattr(widget, "renderable", "")
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(content)
    return out.getvalue()


def test_the_pilot_sorts_filters_pauses_picks_and_quits_on_a_live_orchestrator(
        running: Telemetry) -> None:
    app = TopApp(ScrapeSource([running.url], timeout_s=2), interval_s=0.25)
    instance = running.url.split("://")[1]

    async def drive() -> None:
        async with app.run_test(size=(150, 60)) as pilot:
            await until(pilot, lambda: app.reads >= 3 and app.frame is not None
                        and len(app.frame.agents) >= 6 and app.frame.header.events_per_s,
                        what="agents and rates on screen")
            names = app.shown_agents()
            assert names == sorted(names)
            assert names[0] in shown_text(app, "#agents")
            assert "status" in shown_text(app, "#header") and app.problem is None

            await pilot.press("s", "s", "s", "s", "s", "s")  # name -> ... -> cost
            assert app.sort == "cost"
            costs = {row.name: row.cost_usd for row in app.frame.agents}
            assert [costs[n] for n in app.shown_agents()] == sorted(costs.values(),
                                                                    reverse=True)
            assert "sorted by cost" in shown_text(app, "#agents")
            await pilot.press("r")  # the frame may have moved on: compare with its costs
            costs = {row.name: row.cost_usd for row in app.frame.agents}
            assert [costs[n] for n in app.shown_agents()] == sorted(costs.values())
            assert "sorted by cost ▲" in shown_text(app, "#agents")

            await pilot.press("slash", "d", "e", "v", "enter")
            assert app.filter_text == "dev" and app.shown_agents() == ["dev"]
            table = shown_text(app, "#agents")
            assert "filter 'dev'" in table and " qa " not in table
            await pilot.press("escape")
            assert app.filter_text == "" and len(app.shown_agents()) == len(app.frame.agents)

            await pilot.press("p")
            assert app.paused and "PAUSED" in shown_text(app, "#header")
            reads = app.reads
            await pilot.pause(1.0)  # four refresh intervals
            assert app.reads <= reads + 1  # at most the read already under way
            await pilot.press("p")
            await until(pilot, lambda: app.reads >= reads + 3, what="reading again")

            await pilot.press("i")
            assert app.selected == instance
            assert f"showing {instance}" in shown_text(app, "#header")
            await pilot.press("i")
            assert app.selected is None

            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

            assert app.return_code is None
            await pilot.press("q")
            await until(pilot, lambda: app.return_code is not None, 10, "the app quitting")
        assert app.return_code == 0

    asyncio.run(drive())


def _health(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        return json.load(error)


def _stalled_in_health(url: str) -> bool:
    try:
        firing = _health(url)["checks"]["alerts"]["firing"]
    except (OSError, ValueError, KeyError):
        return False
    return any(alert["alertname"] == "AgentStalled" for alert in firing)


def _top(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), "COLUMNS": "140"}
    return subprocess.run([sys.executable, "-m", "telemetry", "top", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_once_and_json_show_the_stalled_agent_of_the_demo_s_stall_incident(
        tmp_path: Path) -> None:
    """``demo --incident stall`` at 20 times real time: its one-minute idle budget is
    3 real seconds; once AgentStalled fires, top shows that agent as stalled."""
    port = free_port()
    config = tmp_path / "telemetry.yaml"
    config.write_text("alerting:\n  evaluation_interval_s: 1\n")
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "telemetry", "demo", "--incident", "stall", "--time-scale",
         "0.05", "--incident-after", "0", "--incident-for", "3000", "--port", str(port),
         "--seed", "4", "--quiet", "--config", str(config)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _stalled_in_health(f"{url}/health"), 60,
                   what="AgentStalled firing in the demo", interval=0.2, max_interval=0.5)
        (stalled,) = [alert["labels"]["agent"] for alert in
                      _health(f"{url}/health")["checks"]["alerts"]["firing"]
                      if alert["alertname"] == "AgentStalled"]

        once = _top(url, "--once", "--interval", "0.5")
        assert once.returncode == 0, once.stderr
        table = once.stdout.split("agents (", 1)[1].split("\n\n", 1)[0]
        rows = {line.split()[0]: line for line in table.splitlines()[2:]}
        assert "stalled" in rows[stalled], once.stdout
        assert "AgentStalled" in once.stdout and "DEGRADED" in once.stdout

        as_json = _top(url, "--json", "--interval", "0.5")
        assert as_json.returncode == 0, as_json.stderr
        frame = json.loads(as_json.stdout)
        states = {row["name"]: row["state"] for row in frame["agents"]}
        assert states[stalled] == "stalled"
        assert [n for n, s in states.items() if s == "stalled"] == [stalled]
        assert frame["header"]["status"] == "degraded"
        assert {"agents", "handoffs", "workflows", "sparklines", "header"} <= set(frame)
    finally:
        demo.terminate()
        assert demo.wait(20) == 0, (tmp_path / "demo.log").read_text()
        log.close()
