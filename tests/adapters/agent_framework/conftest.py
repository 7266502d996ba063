"""Offline fixtures for the Agent Framework adapter: scripted chat clients only, no API
key, and Agent Framework's own OpenTelemetry instrumentation off (our spans are the
ones under test; its own would go to whatever exporter the process has)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ["ENABLE_INSTRUMENTATION"] = "false"  # read when agent_framework is imported
os.environ["ENABLE_SENSITIVE_DATA"] = "false"

from telemetry.adapters import Instrumentation
from telemetry.adapters import agent_framework as adapter

for key in [key for key in os.environ if key.endswith("_API_KEY")]:
    os.environ.pop(key)  # nothing here may reach a real model


@pytest.fixture
def instrumented() -> Iterator[Instrumentation]:
    handle = adapter.instrument()
    yield handle
    handle.uninstrument()
