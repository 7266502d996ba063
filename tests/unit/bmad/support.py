"""Replaying recorded BMAD file states, and recording the signals they send."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import blinker

from telemetry.signals import CONTRACT

FIXTURES = Path(__file__).parent / "fixtures"
SNAPSHOTS = sorted((FIXTURES / "sprint").glob("*.yaml"))
#: Where BMAD writes the sprint status by default.
SPRINT_STATUS = Path("_bmad-output/implementation-artifacts/sprint-status.yaml")


class Clock:
    """Epoch seconds the test moves by hand, for exact durations."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def write_in_place(path: Path, text: str) -> None:
    """Rewrite ``path`` in place (same inode), as an editor or an agent's file tool does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by a renamed temporary file, as BMAD's own scripts do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


@contextmanager
def recorded_signals() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every contract signal the BMAD watcher sends, as (name, fields), in order."""
    events: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for spec in CONTRACT:
        def receive(sender: Any, _name: str = spec.name, **fields: Any) -> None:
            if sender == "adapter:bmad":
                events.append((_name, fields))
        blinker.signal(spec.name).connect(receive, weak=False)
        receivers.append((spec.name, receive))
    try:
        yield events
    finally:
        for name, receive in receivers:
            blinker.signal(name).disconnect(receive)
