"""docs/adapters/agent_framework.md: its example runs as written (with the scripted chat
client it defines instead of an LLM) and prints what the page says it prints; its
mapping table names every workflow event the observer handles."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys

from telemetry.adapters import agent_framework as adapter
from tests.support import ROOT

PAGE = (ROOT / "docs" / "adapters" / "agent_framework.md").read_text()


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE, re.S)
    assert len(blocks) == 1, "the page has one runnable example"
    return blocks[0]


def test_the_example_runs_and_prints_what_the_page_says() -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.endswith("_API_KEY") and not key.startswith("YOLO_TELEMETRY_")}
    env["ENABLE_INSTRUMENTATION"] = "false"
    result = subprocess.run([sys.executable, "-c", example()], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    promised = re.findall(r"print\(.*?\)\s+# (.+)", example())
    assert result.stdout.split("\n")[:len(promised)] == promised
    assert promised == ["Refund on its way.", "healthy", "1"]


def test_the_table_names_every_workflow_event_the_observer_handles() -> None:
    handled = set(re.findall(r'kind == "(\w+)"', inspect.getsource(adapter.WorkflowObserver)))
    assert handled == {"handoff_sent", "status", "failed"}
    for event in (*handled, "started", "request_info"):
        assert f"`{event}`" in PAGE, event
