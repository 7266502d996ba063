"""docs/adapters/openai_agents.md: its example runs as written (with the scripted model
it uses instead of an LLM) and prints what the page says it prints; its mapping table
names every span type the processor handles."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from telemetry.adapters import openai_agents as adapter
from tests.support import ROOT

PAGE = (ROOT / "docs" / "adapters" / "openai_agents.md").read_text()


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE, re.S)
    assert len(blocks) == 1, "the page has one runnable example"
    return blocks[0]


def test_the_example_runs_and_prints_what_the_page_says() -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OPENAI_", "YOLO_TELEMETRY_"))}  # offline, default config
    result = subprocess.run([sys.executable, "-c", example()], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    promised = re.findall(r"print\(.*?\)\s+# (.+)", example())
    assert result.stdout.split("\n")[:len(promised)] == promised
    assert promised == ["Sunny in Paris.", "healthy", "1"]


def test_the_table_names_every_span_type_the_processor_handles() -> None:
    names = {"agent": "AgentSpanData", "turn": "TurnSpanData", "task": None,
             "function": "FunctionSpanData", "generation": "GenerationSpanData",
             "response": "ResponseSpanData", "handoff": "HandoffSpanData",
             "guardrail": "GuardrailSpanData"}
    handled = adapter.TelemetryProcessor()._enders
    assert set(handled) == set(names)
    for kind, name in names.items():
        if name is not None:  # task spans only carry the run's failure
            assert f"`{name}`" in PAGE, kind
