"""Shared by the frameworks' test folders: reading what the adapter tests scrape, and
running the examples of docs/adapters/ as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.support import ROOT


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels}`` (exactly those labels) in a Prometheus
    text exposition; 0 when absent."""
    wanted = sorted(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.compile(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$", re.M)
    for found, value in pattern.findall(text):
        if sorted(filter(None, found.split(","))) == wanted:
            return float(value)
    return 0.0


def page_example(page: str) -> str:
    """The one runnable ```python block of ``docs/adapters/<page>.md``."""
    text = (ROOT / "docs" / "adapters" / f"{page}.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, f"docs/adapters/{page}.md has one runnable example"
    return blocks[0]


def run_example(code: str, *, drop: Callable[[str], bool] = lambda key: False,
                extra_env: Mapping[str, str] | None = None,
                cwd: Path = ROOT, timeout: float = 120) -> list[str]:
    """Run ``code`` in a fresh interpreter, as a user would, and return its output lines.

    The environment is this process's without the ``YOLO_TELEMETRY_*`` variables (the
    example must work on the default config) and without any variable ``drop`` names
    (API keys, so the example provably stays offline), plus ``extra_env``.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("YOLO_TELEMETRY_") and not drop(key)}
    env.update(extra_env or {})
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def promised_prints(code: str) -> list[str]:
    """What the example's ``print(...)  # shown`` comments say it prints, in order."""
    return re.findall(r"print\(.*?\)\s+# (.+)", code)
