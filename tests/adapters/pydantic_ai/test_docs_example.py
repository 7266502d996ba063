"""docs/adapters/pydantic_ai.md: its example runs as written (with the test models it
uses instead of an LLM) and prints what the page says it prints; its mapping table
names every hook the capability implements."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from telemetry.adapters import pydantic_ai as adapter
from tests.support import ROOT

PAGE = (ROOT / "docs" / "adapters" / "pydantic_ai.md").read_text()


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE, re.S)
    assert len(blocks) == 1, "the page has one runnable example"
    return blocks[0]


def test_the_example_runs_and_prints_what_the_page_says() -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.endswith("_API_KEY") and not key.startswith("YOLO_TELEMETRY_")}
    result = subprocess.run([sys.executable, "-c", example()], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    promised = re.findall(r"print\(.*?\)\s+# (.+)", example())
    assert result.stdout.split("\n")[:len(promised)] == promised
    assert promised == ["Done: three sources agree.", "healthy", "1"]


def test_the_table_names_every_hook_the_capability_implements() -> None:
    hooks = sorted(name for name in vars(adapter.TelemetryCapability)
                   if name.startswith("wrap_"))
    assert hooks == ["wrap_model_request", "wrap_run", "wrap_tool_execute"]
    for hook in hooks:
        assert f"(`{hook}`)" in PAGE, hook
