"""docs/adapters/google_adk.md: its example runs as written (with the scripted model it
uses instead of Gemini) and prints what the page says it prints; its mapping table
names every callback the plugin implements."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from telemetry.adapters import google_adk as adapter
from tests.support import ROOT

PAGE = (ROOT / "docs" / "adapters" / "google_adk.md").read_text()


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE, re.S)
    assert len(blocks) == 1, "the page has one runnable example"
    return blocks[0]


def test_the_example_runs_and_prints_what_the_page_says() -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.endswith("_API_KEY") and not key.startswith(("YOLO_TELEMETRY_", "GOOGLE_"))}
    env["GOOGLE_GENAI_USE_ENTERPRISE"] = "false"
    result = subprocess.run([sys.executable, "-c", example()], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    promised = re.findall(r"print\(.*?\)\s+# (.+)", example())
    assert result.stdout.split("\n")[:len(promised)] == promised
    assert promised == ["Your order has shipped.", "healthy", "1"]


def test_the_table_names_every_callback_the_plugin_implements() -> None:
    callbacks = sorted(name for name in vars(adapter.TelemetryPlugin)
                       if name.endswith("_callback"))
    assert len(callbacks) == 13
    for callback in callbacks:
        assert f"`{callback}`" in PAGE, callback
