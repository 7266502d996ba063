"""BMAD state changes -> our signals. See docs/adapters/bmad.md for the table.

:class:`SignalMapper` keeps what the signals need beyond one file state: when each story
entered its state (durations), which stories each role holds in a state it works in
(activations), the epics in flight (workflows), the blocked stories (mode). It reads no
file and keeps no text; it is given parsed states and sends through an
:class:`~telemetry.adapters.AdapterEmitter`, so a failing receiver is counted, never
raised. Items in a state it does not know are counted once per item and state through
``count`` (``unknown_state``), logged once per state, and otherwise ignored: the item
keeps its last known state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from telemetry.adapters import AdapterEmitter
from telemetry.bmad.diff import Change, changes
from telemetry.bmad.memlog import Entry
from telemetry.bmad.roles import RoleTable
from telemetry.bmad.state import (
    BLOCKED,
    EPIC_STATES,
    RETRO_STATES,
    STORY_STATES,
    SprintStatus,
    epic_of,
)

log = logging.getLogger("telemetry.bmad")

WORKFLOW_TYPE = "bmad_epic"
#: (item, state) pairs remembered so that each is counted once.
MAX_UNKNOWN = 10_000
#: Memlog entry kinds that record a decision (BMAD's planning skills log these).
DECISION_KINDS = frozenset({"decision", "direction", "override", "change"})
_KNOWN = {"epic": EPIC_STATES, "story": (*STORY_STATES, BLOCKED),
          "retrospective": RETRO_STATES}


@dataclass
class _Story:
    state: str
    since: float
    #: The state before ``blocked``, whose owner the story goes back from.
    before_block: str | None = None


@dataclass
class MapperState:
    known: SprintStatus = field(default_factory=SprintStatus)
    stories: dict[str, _Story] = field(default_factory=dict)
    holding: dict[str, set[str]] = field(default_factory=dict)
    in_flight: dict[str, float] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    unknown: set[tuple[str, str]] = field(default_factory=set)
    logged: set[str] = field(default_factory=set)


class SignalMapper:
    """Turns successive sprint states and memlog entries into signals."""

    def __init__(self, emitter: AdapterEmitter, roles: RoleTable, clock: Callable[[], float],
                 count: Callable[[str], None]) -> None:
        self.emit = emitter.send
        self.roles = roles
        self.clock = clock
        self.count = count
        self.state = MapperState()
        self.started = False

    # -- the sprint status ----------------------------------------------------------

    def apply(self, status: SprintStatus) -> None:
        """Send the signals of the changes from the last state applied to ``status``.
        The first state applied is the baseline: what is in flight starts, nothing moves."""
        known = self._known_only(status)
        now = self.clock()
        if not self.started:
            self.started = True
            self._baseline(known, now)
        else:
            for change in changes(self.state.known, known):
                self._change(change, known, now)
        self.state.known = known

    def _known_only(self, status: SprintStatus) -> SprintStatus:
        """``status`` with each unknown state replaced by the item's last known one."""
        last = self.state.known
        result = SprintStatus()
        for kind, new, old, out in (
                ("epic", status.epics, last.epics, result.epics),
                ("story", status.stories, last.stories, result.stories),
                ("retrospective", status.retrospectives, last.retrospectives,
                 result.retrospectives)):
            for key, value in new.items():
                if value in _KNOWN[kind]:
                    out[key] = value
                    continue
                self._unknown(kind, key, value)
                if key in old:
                    out[key] = old[key]
        return result

    def _unknown(self, kind: str, key: str, value: str) -> None:
        seen = self.state.unknown
        if (key, value) in seen:
            return
        if len(seen) >= MAX_UNKNOWN:  # bounded whatever the file holds: may count again
            seen.clear()
        seen.add((key, value))
        self.count("unknown_state")
        if value not in self.state.logged and len(self.state.logged) < MAX_UNKNOWN:
            self.state.logged.add(value)
            log.warning("BMAD %s state %r is not one telemetry knows (%s: %s); items in it "
                        "keep their last known state; further ones are only counted", kind,
                        value, ", ".join(_KNOWN[kind]), key)

    def _baseline(self, status: SprintStatus, now: float) -> None:
        for key, state in status.stories.items():
            self.state.stories[key] = _Story(state, now)
            if state == BLOCKED:
                self.state.blocked.add(key)
            self._hold(key, state)
        for epic, state in status.epics.items():
            if state == "in-progress" or self._epic_busy(status, epic):
                self._start_workflow(epic, now)
        self._set_mode(None)

    def _change(self, change: Change, status: SprintStatus, now: float) -> None:
        if change.kind == "story":
            self._story(change.key, change.before, change.after, now)
            epic = epic_of(change.key)
            if change.after in ("in-progress", "review"):
                self._start_workflow(epic, now)
            self._complete_if_done(status, epic, now)
        elif change.kind == "epic":
            if change.after == "in-progress":
                self._start_workflow(change.key, now)
            elif change.after == "done":
                self._complete_workflow(change.key, now)
        elif change.after == "done":
            self.emit("yolo.decision_made", agent=self.roles.owner("ready-for-dev"),
                      decision_type="retrospective_done", duration_s=0.0,
                      workflow_id=change.key)

    # -- stories ----------------------------------------------------------------------

    def _story(self, key: str, before: str | None, after: str | None, now: float) -> None:
        story = self.state.stories.get(key)
        if before is None or story is None:  # a new story: nothing moved yet
            if after is not None:
                self.state.stories[key] = _Story(after, now)
                if after == BLOCKED:
                    self._blocked_anew(key)
                self._hold(key, after)
            return
        if after is None:  # gone from the file
            self._release(key, story.state)
            del self.state.stories[key]
            self._unblock(key)
            return
        duration = max(now - story.since, 0.0)
        if after == BLOCKED:
            self._release(key, story.state)
            self._blocked(key, story, now)
            return
        unblocked = story.state == BLOCKED
        # A story blocked since the baseline has no state to come back from: its new
        # owner takes it back, with no handoff.
        left = (story.before_block or after) if unblocked else story.state
        self._moved(key, left, after, duration, unblocked)
        self._release(key, story.state)
        self.state.stories[key] = _Story(after, now)
        self._unblock(key)
        self._hold(key, after)

    def _moved(self, key: str, left: str, entered: str, duration: float,
               unblocked: bool) -> None:
        roles = self.roles
        actor = roles.actor(left, entered)
        self.emit("yolo.decision_made", agent=actor,
                  decision_type=_decision_type(left, entered, unblocked),
                  duration_s=duration, workflow_id=key)
        source, target = roles.owner(left), roles.owner(entered)
        if source != target:
            # The story's own id as workflow_id: a bounce back to a role the story left
            # is then a handoff loop (yolo_handoff_loops_total), and stories worked side
            # by side in one epic are not mistaken for one.
            self.emit("yolo.handoff_completed", from_agent=source, to_agent=target,
                      duration_s=duration, workflow_id=key)

    def _blocked(self, key: str, story: _Story, now: float) -> None:
        owner = self.roles.owner(story.state)
        if self.roles.blocked in ("safety", "both"):
            self.emit("yolo.safety_blocked", agent=owner, rule="story_blocked",
                      workflow_id=key)
        self.state.stories[key] = _Story(BLOCKED, now, before_block=story.state)
        self._blocked_anew(key)

    def _blocked_anew(self, key: str) -> None:
        was = bool(self.state.blocked)
        self.state.blocked.add(key)
        self._set_mode(was)

    def _unblock(self, key: str) -> None:
        if key in self.state.blocked:
            self.state.blocked.discard(key)
            self._set_mode(True)

    def _set_mode(self, was_blocked: bool | None) -> None:
        """``degraded`` while a story is blocked, ``active`` otherwise, when the mode
        mapping is on; ``was_blocked`` None: the baseline, sent whatever it is."""
        if self.roles.blocked not in ("mode", "both"):
            return
        blocked = bool(self.state.blocked)
        if was_blocked is None or blocked != was_blocked:
            self.emit("yolo.mode_changed", mode="degraded" if blocked else "active")

    # -- activations ------------------------------------------------------------------

    def _hold(self, key: str, state: str) -> None:
        if not self.roles.works(state):
            return
        role = self.roles.owner(state)
        held = self.state.holding.setdefault(role, set())
        if not held:
            self.emit("yolo.agent_activated", agent=role)
        held.add(key)

    def _release(self, key: str, state: str) -> None:
        if not self.roles.works(state):
            return
        role = self.roles.owner(state)
        held = self.state.holding.get(role)
        if held and key in held:
            held.discard(key)
            if not held:
                self.emit("yolo.agent_deactivated", agent=role)

    # -- epics --------------------------------------------------------------------------

    def _epic_busy(self, status: SprintStatus, epic: str) -> bool:
        stories = status.stories_of(epic).values()
        return any(self.roles.works(state) for state in stories)

    def _start_workflow(self, epic: str, now: float) -> None:
        if epic in self.state.in_flight:
            return
        self.state.in_flight[epic] = now
        self.emit("yolo.workflow_started", workflow_id=epic, workflow_type=WORKFLOW_TYPE)

    def _complete_if_done(self, status: SprintStatus, epic: str, now: float) -> None:
        stories = status.stories_of(epic)
        if stories and all(state == "done" for state in stories.values()):
            self._complete_workflow(epic, now)

    def _complete_workflow(self, epic: str, now: float) -> None:
        started = self.state.in_flight.pop(epic, None)
        if started is not None:  # an epic first seen done has no duration to report
            self.emit("yolo.workflow_completed", workflow_id=epic,
                      duration_s=max(now - started, 0.0))

    # -- memlogs --------------------------------------------------------------------------

    def memlog(self, path: str, new: list[Entry], entries: int, size_bytes: int) -> None:
        """A memlog read: its new entries (none at its first read), and its size as the
        keeping agent's context (entries as items, an estimate of 4 bytes per token)."""
        agent = self.roles.memlog_agent(path)
        for entry in new:
            if entry.kind in DECISION_KINDS:
                self.emit("yolo.decision_made", agent=agent, decision_type=entry.kind,
                          duration_s=0.0)
            if entry.halted and self.roles.blocked in ("safety", "both"):
                self.emit("yolo.safety_blocked", agent=agent, rule="memlog_halt")
        self.emit("yolo.context_updated", agent=agent, items=entries,
                  tokens=size_bytes // 4)


def _decision_type(left: str, entered: str, unblocked: bool) -> str:
    if unblocked:
        return "story_unblocked"
    if left == "review" and STORY_STATES.index(entered) < STORY_STATES.index("review"):
        return "review_bounced"
    return "story_" + entered.replace("-", "_")
