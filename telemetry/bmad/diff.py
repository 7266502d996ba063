"""What changed between two parsed sprint states, as a list of :class:`Change`.

Pure: no clock, no signals. A key new to the file is a change from ``None`` (a story
added by sprint planning), a key gone from it a change to ``None``. Changes come in the
new file's order (epics, stories and retrospectives as BMAD lists them), then removals.
"""

from __future__ import annotations

from dataclasses import dataclass

from telemetry.bmad.state import SprintStatus


@dataclass(frozen=True)
class Change:
    """One item's move: ``kind`` is ``epic``, ``story`` or ``retrospective``."""

    kind: str
    key: str
    before: str | None
    after: str | None


def changes(before: SprintStatus, after: SprintStatus) -> list[Change]:
    """Every item whose state differs between ``before`` and ``after``."""
    found: list[Change] = []
    for kind, old, new in (("epic", before.epics, after.epics),
                           ("story", before.stories, after.stories),
                           ("retrospective", before.retrospectives, after.retrospectives)):
        for key, state in new.items():
            if old.get(key) != state:
                found.append(Change(kind, key, old.get(key), state))
        found.extend(Change(kind, key, state, None)
                     for key, state in old.items() if key not in new)
    return found
