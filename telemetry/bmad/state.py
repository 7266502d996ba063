"""``sprint-status.yaml``, parsed: the state of every epic, story and retrospective.

The format is the one BMAD's sprint planning skill generates
(``src/bmm-skills/plan/bmad-sprint-planning/sprint-status-template.yaml`` and
``scripts/sprint_plan.py`` in github.com/bmad-code-org/BMAD-METHOD): a
``development_status`` mapping whose keys follow one grammar, ``epic-N`` for an epic,
``N-M[a]-slug`` for a story of epic N, ``epic-N-retrospective`` for its retrospective,
and whose values are states. The v6 states ``drafted`` and ``contexted`` still exist in
the wild; BMAD reads them as ``ready-for-dev`` and ``in-progress``, and so do we.

Parsing is strict about shape and lenient about content: a file that is not YAML, or
has no ``development_status`` mapping, is :class:`Unreadable` (most often a file caught
mid-write, read again at the next poll); a key outside the grammar is ignored; a state
outside the vocabulary is kept as it is, for the mapper to count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

EPIC_KEY = re.compile(r"^epic-(\d+)$")
RETRO_KEY = re.compile(r"^epic-(\d+)-retrospective$")
STORY_KEY = re.compile(r"^(\d+)-(\d+)([a-z]?)-.+")

STORY_STATES = ("backlog", "ready-for-dev", "in-progress", "review", "done")
#: Not in BMAD's vocabulary, but written by hand and by build runs that halt (the build
#: skill's own spec files use ``blocked``): mapped to safety blocks and the mode.
BLOCKED = "blocked"
EPIC_STATES = ("backlog", "in-progress", "done")
RETRO_STATES = ("optional", "done")
LEGACY_STATES = {"drafted": "ready-for-dev", "contexted": "in-progress"}


class Unreadable(ValueError):
    """The text is not a sprint status (yet): not YAML, or no ``development_status``."""


@dataclass(frozen=True)
class SprintStatus:
    """Every tracked item's state. Keys are BMAD's own (``epic-1``, ``1-2-slug``)."""

    epics: dict[str, str] = field(default_factory=dict)
    stories: dict[str, str] = field(default_factory=dict)
    retrospectives: dict[str, str] = field(default_factory=dict)

    def stories_of(self, epic: str) -> dict[str, str]:
        """The stories of ``epic`` (``epic-N``): the keys whose leading number is N."""
        number = epic.removeprefix("epic-")
        return {key: state for key, state in self.stories.items()
                if key.split("-", 1)[0] == number}


def epic_of(story: str) -> str:
    """``3-2-digest-delivery`` -> ``epic-3``, as BMAD's sprint sync derives it."""
    return f"epic-{int(story.split('-', 1)[0])}"


def parse_sprint_status(text: str) -> SprintStatus:
    """The :class:`SprintStatus` in ``text``; raises :class:`Unreadable`."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise Unreadable(f"not YAML ({type(error).__name__})") from None
    if not isinstance(document, dict):
        raise Unreadable("not a mapping")
    entries = document.get("development_status")
    if not isinstance(entries, dict):
        raise Unreadable("no development_status mapping")
    status = SprintStatus()
    for key, raw in entries.items():
        key = str(key)
        state = _state(raw)
        if EPIC_KEY.match(key):
            status.epics[key] = state
        elif RETRO_KEY.match(key):
            status.retrospectives[key] = state
        elif STORY_KEY.match(key):
            status.stories[key] = state
    return status


def _state(raw: object) -> str:
    text = "" if raw is None else str(raw).strip().lower()
    return LEGACY_STATES.get(text, text)
