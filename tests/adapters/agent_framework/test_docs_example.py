"""docs/adapters/agent_framework.md: its example runs as written (with the scripted chat
client it defines instead of an LLM) and prints what the page says it prints; its
mapping table names every workflow event the observer handles."""

from __future__ import annotations

import inspect
import re

from telemetry.adapters import agent_framework as adapter
from tests.adapters.support import page_example, promised_prints, run_example
from tests.support import ROOT

PAGE = (ROOT / "docs" / "adapters" / "agent_framework.md").read_text()


def test_the_example_runs_and_prints_what_the_page_says() -> None:
    code = page_example("agent_framework")
    lines = run_example(code, drop=lambda key: key.endswith("_API_KEY"),
                        extra_env={"ENABLE_INSTRUMENTATION": "false"})
    promised = promised_prints(code)
    assert lines[:len(promised)] == promised
    assert promised == ["Refund on its way.", "healthy", "1"]


def test_the_table_names_every_workflow_event_the_observer_handles() -> None:
    handled = set(re.findall(r'kind == "(\w+)"', inspect.getsource(adapter.WorkflowObserver)))
    assert handled == {"handoff_sent", "status", "failed"}
    for event in (*handled, "started", "request_info"):
        assert f"`{event}`" in PAGE, event
