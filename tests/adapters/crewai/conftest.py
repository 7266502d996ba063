"""Fixtures of the CrewAI adapter tests: offline and instrumented (``recorder``:
tests/adapters/conftest.py).

CrewAI's own telemetry (an OpenTelemetry exporter to its servers), its run tracing,
its first-run tracing prompt and its PyPI version check are switched off before crewai
is imported (the variables the installed releases read; see docs/adapters/crewai.md).
``OTEL_SDK_DISABLED`` would switch CrewAI's telemetry off too, but also every
OpenTelemetry SDK provider in the process, ours included: it stays unset.

CrewAI keeps the task outputs of the latest kickoff in a SQLite file in the user's data
directory, and releases read each other's files badly (1.15.21 fails on what 1.15.30
wrote): the tests keep theirs in a directory of their own, removed at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_DATA = tempfile.mkdtemp(prefix="yolo-crewai-tests-")
atexit.register(shutil.rmtree, _DATA, ignore_errors=True)
os.environ["XDG_DATA_HOME"] = _DATA  # CrewAI's storage (appdirs) goes here

OFFLINE = {"CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_DISABLE_TRACKING": "true",
           "CREWAI_TRACING_ENABLED": "false", "CREWAI_DISABLE_VERSION_CHECK": "true",
           "CREWAI_TESTING": "true"}
os.environ.update(OFFLINE)
for _name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OTEL_SDK_DISABLED"):
    os.environ.pop(_name, None)

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from telemetry.adapters import crewai as adapter  # noqa: E402


@pytest.fixture
def instrumented() -> Iterator[adapter.CrewAIInstrumentation]:
    handle = adapter.instrument()
    yield handle
    handle.uninstrument()
