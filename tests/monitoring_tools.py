"""Small helpers for the monitoring tests: find promtool/amtool, run them.

A missing tool skips the test, or fails it when YOLO_TELEMETRY_REQUIRE_BACKENDS=1
(CI installs them), so a green run cannot hide an untested backend.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def require_tool(name: str) -> str:
    """The path of executable ``name``; skip (or fail when backends are required)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if os.environ.get("YOLO_TELEMETRY_REQUIRE_BACKENDS") == "1":
            pytest.fail(message)
        pytest.skip(message)
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
