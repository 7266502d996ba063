"""Small helpers for the monitoring tests: run promtool or amtool with any arguments.

tests/backends/ covers the promtool calls other tests share; these run whatever
command docs/monitoring.md shows. A missing tool skips the test, or fails it when
YOLO_TELEMETRY_REQUIRE_BACKENDS=1 (CI installs them).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import ROOT
from tests.support.backends import require_backend


def require_tool(name: str) -> str:
    """The path of executable ``name``; skip (or fail when backends are required)."""
    path = shutil.which(name)
    require_backend(name, path is not None, f"{name} is not on PATH")
    assert path is not None
    return path


def run_tool(name: str, *args: str, cwd: Path = ROOT,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a tool and return its result (stdout and stderr as text)."""
    return subprocess.run([require_tool(name), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output
