"""The example of docs/adapters/langgraph.md runs as written (in a fresh interpreter, as
a user would run it) and shows what the page says it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

PAGE = ROOT / "docs" / "adapters" / "langgraph.md"


def example() -> str:
    (code,) = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    return code


def test_the_docs_example_runs(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example())
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["mode while waiting: paused", "mode after resume: active",
                         "handoffs: 3 state saves: 6"]
    assert lines[3].startswith("metrics at http://127.0.0.1:")
