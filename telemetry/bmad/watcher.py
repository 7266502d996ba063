""":class:`BmadWatcher`: follows a BMAD project's files and sends our signals.

Each :meth:`~BmadWatcher.poll` stats the sprint status and the known memlogs, parses
what changed and hands it to the :class:`~telemetry.bmad.mapping.SignalMapper`. A poll
never raises: a file caught mid-write (``unreadable``) is read again at the next poll,
a deleted or renamed file (``file_missing``) is looked for again at every poll, and any
other failure (``exception``) is logged once; each is counted in
``yolo_telemetry_dropped_total{component="adapter_bmad",reason=...}`` and in
:class:`WatcherCounts`, once per occurrence (a file version, a disappearance).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from telemetry.adapters import AdapterEmitter
from telemetry.bmad.follower import FileFollower, Signature, find_memlogs, find_sprint_status
from telemetry.bmad.mapping import SignalMapper
from telemetry.bmad.memlog import parse_entries
from telemetry.bmad.roles import RoleTable
from telemetry.bmad.state import SprintStatus, Unreadable, parse_sprint_status

log = logging.getLogger("telemetry.bmad")

COMPONENT = "adapter_bmad"
#: Polls between two walks of the project for new memlogs (and a moved sprint status).
RESCAN_EVERY = 10


@dataclass
class WatcherCounts:
    """What the watcher has seen, for its caller and its tests."""

    polls: int = 0
    reads: int = 0
    unreadable: int = 0
    file_missing: int = 0
    unknown_state: int = 0
    exception: int = 0


class BmadWatcher:
    """Follows the BMAD project at ``root`` (a directory, or its sprint-status file).

    ``count_dropped(component, reason)`` counts a problem in the running telemetry
    (``Aggregator.count_dropped``); ``clock`` gives the epoch seconds durations are
    measured with.
    """

    def __init__(self, root: str | Path, roles: RoleTable | None = None, *,
                 count_dropped: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.counts = WatcherCounts()
        self.emitter = AdapterEmitter("bmad")
        self.mapper = SignalMapper(self.emitter, roles or RoleTable(), clock, self._count)
        self._count_dropped = count_dropped
        self._sprint: FileFollower | None = None
        self._failed: Signature | None = None
        self._shrunk: Signature | None = None
        self._missing_noted = False
        #: Polls in a row that ended with the sprint status missing or unreadable.
        self._bad_polls = 0
        self._memlogs: dict[Path, FileFollower] = {}
        self._memlog_entries: dict[Path, int] = {}
        self._logged: set[str] = set()

    @property
    def sprint_status_path(self) -> Path | None:
        return self._sprint.path if self._sprint else None

    def health(self) -> dict[str, Any]:
        """The ``bmad`` check of ``/health``: ``failing`` once the sprint status has been
        missing or unreadable for two polls in a row (one is a write in progress),
        ``starting`` until it was first read, else ``ok``; with the counts."""
        started = "ok" if self.mapper.started else "starting"
        status = "failing" if self._bad_polls >= 2 else started
        path = self.sprint_status_path
        return {"status": status, "sprint_status": str(path) if path else None,
                "memlogs": len(self._memlogs), **asdict(self.counts)}

    def poll(self) -> None:
        """One look at every followed file; never raises."""
        self.counts.polls += 1
        for step in (self._poll_sprint_status, self._poll_memlogs):
            try:
                step()
            except Exception:
                self._count("exception")
                self._log_once(step.__name__, "telemetry's BMAD watcher failed in %s; it goes "
                               "on polling, further failures are only counted",
                               step.__name__, exc_info=True)

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Poll every ``interval_s`` seconds until ``stop`` is set."""
        while True:
            self.poll()
            if stop.wait(interval_s):
                return

    # -- the sprint status ------------------------------------------------------------

    def _poll_sprint_status(self) -> None:
        self._bad_polls += 1  # until this poll finds the file readable or unchanged
        changed = self._read_sprint_status()
        if self._sprint is None:
            return
        if changed is None:  # the version read last is still there
            self._bad_polls = 0
            return
        text, signature = changed
        self.counts.reads += 1
        try:
            status = parse_sprint_status(text)
        except Unreadable as error:
            if signature != self._failed:
                self._failed = signature
                self._count("unreadable")
                self._log_once("unreadable", "%s is not a sprint status (%s); read again at "
                               "the next poll (a file caught mid-write looks like this); "
                               "further ones are only counted", self._sprint.path, error)
            return
        if self._lost_items(status) and signature != self._shrunk:
            # BMAD never removes items: a file that lost some is most likely cut short
            # mid-write, yet still YAML. Believed only if it is still so at the next poll.
            self._shrunk = signature
            return
        self._bad_polls = 0
        self._sprint.consume(signature, text)
        self.mapper.apply(status)

    def _lost_items(self, status: SprintStatus) -> bool:
        known = self.mapper.state.known
        return not (known.stories.keys() <= status.stories.keys()
                    and known.epics.keys() <= status.epics.keys())

    def _read_sprint_status(self) -> tuple[str, Signature] | None:
        """The followed file's text when it changed; when it is gone, the file found in
        its place (renamed, moved) is followed and read at once."""
        for _ in range(2):
            if self._sprint is None:
                found = find_sprint_status(self.root)
                if found is None:
                    self._missing(f"no {self.root}/**/sprint-status.yaml")
                    return None
                self._sprint = FileFollower(found)
            try:
                changed = self._sprint.read_if_changed()
            except OSError as error:
                self._missing(f"{self._sprint.path}: {error.strerror or error}")
                self._sprint = None  # looked for again, wherever it was renamed to
                continue
            self._missing_noted = False
            return changed
        return None

    def _missing(self, why: str) -> None:
        if not self._missing_noted:
            self._missing_noted = True
            self._count("file_missing")
            self._log_once("missing", "BMAD sprint status missing (%s); looked for at every "
                           "poll; further disappearances are only counted", why)

    # -- memlogs ------------------------------------------------------------------------

    def _poll_memlogs(self) -> None:
        if (self.counts.polls - 1) % RESCAN_EVERY == 0:
            for path in find_memlogs(self.root):
                self._memlogs.setdefault(path, FileFollower(path))
        for path, follower in list(self._memlogs.items()):
            try:
                changed = follower.read_if_changed()
            except OSError:
                del self._memlogs[path]  # found again by the next walk if it comes back
                self._memlog_entries.pop(path, None)
                continue
            if changed is None:
                continue
            text, signature = changed
            self.counts.reads += 1
            entries = parse_entries(text)
            seen = self._memlog_entries.get(path)
            # Append-only: what lies past the entries seen is new; nothing at the first
            # read. A shorter log (cut mid-write) does not lower the count, so the entries
            # it lacked are not taken for new ones when they come back.
            new = entries[seen:] if seen is not None else []
            self._memlog_entries[path] = max(len(entries), seen or 0)
            follower.consume(signature, text)
            relative = path.relative_to(self.root).as_posix()
            self.mapper.memlog(relative, new, len(entries), signature[2])

    # -- counting -----------------------------------------------------------------------

    def _count(self, reason: str) -> None:
        setattr(self.counts, reason, getattr(self.counts, reason) + 1)
        if self._count_dropped is not None:
            try:
                self._count_dropped(COMPONENT, reason)
            except Exception:  # counting must not stop the watcher either
                self._log_once("count", "telemetry's BMAD watcher could not count %s", reason)

    def _log_once(self, key: str, message: str, *args: object, exc_info: bool = False) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning(message, *args, exc_info=exc_info)
