"""Offline fixtures for the Google ADK adapter: a scripted model only, no API key, no
Google Cloud project, nothing ADK or google-genai would send anywhere."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

for key in [key for key in os.environ
            if key.endswith("_API_KEY") or key.startswith(("GOOGLE_", "OTEL_EXPORTER_"))]:
    os.environ.pop(key)
# google-genai is never asked for a model (ScriptedLlm answers), and would refuse
# without a key; Vertex AI (ADK 2.13: "enterprise") off, so no project or credentials
# are looked up.
os.environ["GOOGLE_GENAI_USE_ENTERPRISE"] = "false"

from telemetry.adapters import Instrumentation  # noqa: E402
from telemetry.adapters import google_adk as adapter  # noqa: E402


@pytest.fixture
def instrumented() -> Iterator[Instrumentation]:
    handle = adapter.instrument()
    yield handle
    handle.uninstrument()
