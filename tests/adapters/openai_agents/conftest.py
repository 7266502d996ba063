"""Offline fixtures for the OpenAI Agents SDK adapter: no network, no API key.

The SDK's default trace processor exports to OpenAI's servers; every test here runs
with the registered processors replaced by the test's own (none unless the test adds
one), and gets them back afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.pop("OPENAI_API_KEY", None)  # nothing here may reach a real model
os.environ.pop("OPENAI_AGENTS_DISABLE_TRACING", None)  # the adapter reads the SDK's traces

from agents.tracing import get_trace_provider, set_trace_processors

from telemetry.adapters import Instrumentation
from telemetry.adapters import openai_agents as adapter


def registered_processors() -> tuple:
    """The processors the SDK's provider holds now."""
    return get_trace_provider()._multi_processor._processors


@pytest.fixture(autouse=True)
def no_default_exporter() -> Iterator[None]:
    before = list(registered_processors())
    set_trace_processors([])
    yield
    set_trace_processors(before)


@pytest.fixture
def instrumented() -> Iterator[Instrumentation]:
    handle = adapter.instrument()
    yield handle
    handle.uninstrument()
