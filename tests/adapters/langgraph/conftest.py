"""Fixtures of the LangGraph adapter tests: offline, instrumented, signals recorded.

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
from typing import Any  # noqa: E402

import blinker  # noqa: E402
import pytest  # noqa: E402

from telemetry.adapters import langgraph as adapter  # noqa: E402
from telemetry.signals import CONTRACT  # noqa: E402


class Recorder:
    """Every contract signal sent while connected, as (short name, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._receivers = []

    def connect(self) -> None:
        for spec in CONTRACT:
            def receive(sender: Any, _name: str = spec.name[5:], **fields: Any) -> None:
                self.events.append((_name, fields))
            self._receivers.append((spec.name, receive))
            blinker.signal(spec.name).connect(receive)

    def disconnect(self) -> None:
        for name, receive in self._receivers:
            blinker.signal(name).disconnect(receive)
        self._receivers.clear()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.events if event == name]

    def names(self) -> list[str]:
        return [event for event, _ in self.events]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    rec.connect()
    yield rec
    rec.disconnect()


@pytest.fixture
def instrumented() -> Iterator[adapter.LangGraphInstrumentation]:
    handle = adapter.instrument()
    yield handle
    handle.uninstrument()
