"""Fixtures of the LangGraph adapter tests: offline and instrumented (``recorder``:
tests/adapters/conftest.py).

langsmith tracing (the only thing langchain sends anywhere) is switched off before
langchain is imported; LangGraph itself sends nothing.
"""

from __future__ import annotations

import os

for _name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
    os.environ[_name] = "false"
for _name in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "OPENAI_API_KEY"):
    os.environ.pop(_name, None)

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from telemetry.adapters import langgraph as adapter  # noqa: E402


@pytest.fixture
def instrumented() -> Iterator[adapter.LangGraphInstrumentation]:
    handle = adapter.instrument()
    yield handle
    handle.uninstrument()
