"""Who owns each story state, and which agent keeps each memlog: the table the mapper
follows, with BMAD's defaults, overridable from a small YAML file (``--roles FILE``).

A story is handed from the role owning the state it leaves to the role owning the state
it enters. A role *works* in a state when holding a story there keeps it active (dev in
``in-progress``, qa in ``review``); the other states are queues (``backlog``,
``ready-for-dev``) or rest (``done``). The file's shape::

    states:                      # any of backlog, ready-for-dev, in-progress, review, done
      review: {role: tea, works: true}
      ready-for-dev: sm          # a role alone keeps the default ``works``
    memlogs:                     # a word of a memlog's path -> the agent keeping it
      brief: analyst
    blocked: both                # safety, mode or both (see docs/adapters/bmad.md)

A mistake exits with status 2 naming the file, the key, what was expected and what was
found, like every config error of the command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from telemetry.bmad.state import STORY_STATES
from telemetry.configsource import ConfigError


@dataclass(frozen=True)
class Ownership:
    role: str
    works: bool


DEFAULT_STATES: dict[str, Ownership] = {
    "backlog": Ownership("sm", works=False),
    "ready-for-dev": Ownership("sm", works=False),
    "in-progress": Ownership("dev", works=True),
    "review": Ownership("qa", works=True),
    "done": Ownership("qa", works=False),
}

#: A word in a memlog's path (its run folder is named after the skill's output) -> agent.
DEFAULT_MEMLOGS: dict[str, str] = {
    "brainstorm": "analyst", "brief": "analyst", "research": "analyst", "prd": "pm",
    "ux": "ux-expert", "architecture": "architect", "spine": "architect", "spec": "pm",
    "epic": "pm", "stor": "sm", "retro": "sm",
}
#: The agent of a memlog whose path matches no word.
MEMLOG_DEFAULT_AGENT = "bmad"
BLOCKED_MAPPINGS = ("safety", "mode", "both")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class RoleTable:
    """The ownership of each story state, the memlog agents, and how ``blocked`` maps."""

    states: dict[str, Ownership] = field(default_factory=lambda: dict(DEFAULT_STATES))
    memlogs: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MEMLOGS))
    blocked: str = "both"

    def owner(self, state: str) -> str:
        return self.states[state].role

    def works(self, state: str) -> bool:
        ownership = self.states.get(state)
        return ownership is not None and ownership.works

    def actor(self, left: str, entered: str) -> str:
        """Who made a story move: the owner of the state left when it works there (dev
        sending to review, qa approving or bouncing), else the owner of the state entered
        (dev picking up a ready story, sm drafting one)."""
        return self.owner(left) if self.works(left) else self.owner(entered)

    def memlog_agent(self, path: str) -> str:
        lowered = path.lower()
        for word, agent in self.memlogs.items():
            if word in lowered:
                return agent
        return MEMLOG_DEFAULT_AGENT


def load_roles(path: str | None) -> RoleTable:
    """The defaults, with the file's overrides when a path is given."""
    if path is None:
        return RoleTable()
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return roles_from(document or {}, source=path)


def roles_from(document: Any, source: str) -> RoleTable:
    """A :class:`RoleTable` from a parsed roles document; :class:`ConfigError` names the key."""
    top = _mapping(document, source, "(top level)")
    unknown = sorted(set(map(str, top)) - {"states", "memlogs", "blocked"})
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}: expected one of states, memlogs, "
                          f"blocked; found an unknown key")
    table = RoleTable()
    if "states" in top:
        table = replace(table, states=_states(top["states"], source))
    if "memlogs" in top:
        memlogs = _mapping(top["memlogs"], source, "memlogs")
        table = replace(table, memlogs={str(word).lower(): _name(agent, source,
                                                                 f"memlogs.{word}")
                                        for word, agent in memlogs.items()})
    if "blocked" in top:
        blocked = top["blocked"]
        if blocked not in BLOCKED_MAPPINGS:
            raise ConfigError(f"{source}: blocked: expected one of "
                              f"{', '.join(BLOCKED_MAPPINGS)}; found {blocked!r}")
        table = replace(table, blocked=blocked)
    return table


def _states(value: Any, source: str) -> dict[str, Ownership]:
    states = dict(DEFAULT_STATES)
    for state, entry in _mapping(value, source, "states").items():
        key = f"states.{state}"
        if state not in STORY_STATES:
            raise ConfigError(f"{source}: {key}: expected one of {', '.join(STORY_STATES)}; "
                              f"found {state!r}")
        if isinstance(entry, Mapping):
            extra = sorted(set(map(str, entry)) - {"role", "works"})
            if extra:
                raise ConfigError(f"{source}: {key}.{extra[0]}: expected role or works; "
                                  f"found an unknown key")
            role = _name(entry.get("role", states[state].role), source, f"{key}.role")
            works = entry.get("works", states[state].works)
            if not isinstance(works, bool):
                raise ConfigError(f"{source}: {key}.works: expected true or false; "
                                  f"found {works!r}")
            states[state] = Ownership(role, works)
        else:
            states[state] = Ownership(_name(entry, source, key), states[state].works)
    return states


def _mapping(value: Any, source: str, key: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {key}: expected a mapping; "
                          f"found {type(value).__name__} {value!r}")
    return value


def _name(value: Any, source: str, key: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(f"{source}: {key}: expected an agent name (letters, digits, "
                          f"'_', '.', '-'; at most 64); found {value!r}")
    return value
