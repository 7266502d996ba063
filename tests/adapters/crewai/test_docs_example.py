"""The example of docs/adapters/crewai.md runs as written (in a fresh interpreter, as a
user would run it: it switches CrewAI's own telemetry off itself) and shows what the
page says it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

PAGE = ROOT / "docs" / "adapters" / "crewai.md"


def example() -> str:
    (code,) = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    return code


def test_the_docs_example_runs(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example())
    env = {name: value for name, value in os.environ.items() if not name.startswith("CREWAI_")}
    env["HOME"] = str(tmp_path)  # CrewAI keeps user data under the home directory
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("handoffs", "metrics"))]
    assert lines[0] == "handoffs: 1 workflows: 1"
    assert lines[1].startswith("metrics at http://127.0.0.1:")
