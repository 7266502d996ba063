"""The recorded /metrics and /health answers in fixtures/, read back as readings."""

from __future__ import annotations

import json
from pathlib import Path

from telemetry.top.readings import History, Reading
from telemetry.top.scrape import parse_health, parse_metrics

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str, instance: str | None = None) -> list[Reading]:
    """The two readings of fixtures/NAME, at the times they were taken."""
    folder = FIXTURES / name
    taken_at = json.loads((folder / "taken_at.json").read_text())
    return [Reading(instance or f"{name}:9464", when,
                    parse_metrics((folder / f"{index}.metrics").read_text()),
                    parse_health((folder / f"{index}.health.json").read_bytes()))
            for index, when in enumerate(taken_at)]


def history_of(*readings: Reading) -> History:
    history = History()
    for reading in sorted(readings, key=lambda r: r.taken_at):
        history.add(reading)
    return history
