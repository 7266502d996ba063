"""Watching a BMAD project: its files in, our signals out.

BMAD (the method the YOLO agents come from) has no Python runtime: a project's state
lives in files its skills rewrite, above all the ``sprint-status.yaml`` of the sprint
planning skill, and the append-only ``.memlog.md`` working memories of the planning
skills. This package follows those files by polling and sends the ``yolo.*`` signals an
orchestrator would have sent, so every exporter, alert and dashboard panel works for a
BMAD project unchanged. ``yolo-telemetry watch-bmad DIR`` runs it.

One module per step: :mod:`~telemetry.bmad.state` and :mod:`~telemetry.bmad.memlog`
parse a file's text, :mod:`~telemetry.bmad.diff` compares two parsed states,
:mod:`~telemetry.bmad.roles` is the configurable table of who owns each state,
:mod:`~telemetry.bmad.mapping` turns changes into signals, :mod:`~telemetry.bmad.follower`
finds and re-reads the files, and :mod:`~telemetry.bmad.watcher` ties them together.
"""

from telemetry.bmad.roles import RoleTable, load_roles
from telemetry.bmad.watcher import BmadWatcher, WatcherCounts

__all__ = ["BmadWatcher", "RoleTable", "WatcherCounts", "load_roles"]
