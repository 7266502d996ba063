"""Finding a BMAD project's files and noticing when they change, by polling.

No extra dependency and nothing platform-specific: each poll is one ``stat`` per
followed file, and a file is read only when its (inode, mtime, size) signature differs
from the last one consumed. A writer that truncates and rewrites in place can be caught
mid-write; the caller then leaves the signature unconsumed and the next poll reads the
file again. A file modified in the last :data:`RECENT_S` seconds is read even when its
signature has not changed, and its content compared by digest: a filesystem's mtime
ticks coarsely, so two writes of one size in one tick would otherwise look like one.
BMAD's own scripts replace files atomically (write a temporary file, then rename),
which changes the inode: that is noticed too.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

SPRINT_STATUS = "sprint-status.yaml"
MEMLOG = ".memlog.md"
#: Where BMAD writes the sprint status by default ({output_folder} is ``_bmad-output``):
#: looked at first, before a bounded walk of the project.
USUAL_PLACES = (
    "_bmad-output/implementation-artifacts/sprint-status.yaml",
    "sprint-status.yaml",
    "docs/sprint-status.yaml",
    "_bmad-output/sprint-status.yaml",
)
_SKIPPED_DIRS = frozenset({"node_modules", ".git", ".venv", "venv", "__pycache__", ".tox"})
MAX_DEPTH = 6
MAX_DIRS = 5000
#: Seconds during which a file's unchanged signature is not trusted (see the module doc).
RECENT_S = 2.0

Signature = tuple[int, int, int]


class FileFollower:
    """One file's changes: :meth:`read_if_changed` returns its text when it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.signature: Signature | None = None
        self.digest: bytes | None = None

    def read_if_changed(self) -> tuple[str, Signature] | None:
        """The text and signature when the file differs from the last consumed version;
        None when it does not. Raises ``OSError`` when it is gone or unreadable."""
        stat = os.stat(self.path)
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if signature == self.signature and time.time() - stat.st_mtime > RECENT_S:
            return None
        with open(self.path, "rb") as file:
            data = file.read()
        if signature == self.signature and _digest(data) == self.digest:
            return None
        return data.decode("utf-8", "replace"), signature

    def consume(self, signature: Signature, text: str) -> None:
        """Mark this version as read, so that it is not read again."""
        self.signature = signature
        self.digest = _digest(text.encode("utf-8", "replace"))


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def find_sprint_status(root: Path) -> Path | None:
    """``root`` itself when it is a file, else its sprint status (the usual places first)."""
    if root.is_file():
        return root
    for place in USUAL_PLACES:
        candidate = root / place
        if candidate.is_file():
            return candidate
    return next((path for path in _walk(root) if path.name == SPRINT_STATUS), None)


def find_memlogs(root: Path) -> list[Path]:
    """Every ``.memlog.md`` under ``root``, within the walk's bounds, in a stable order."""
    if root.is_file():
        return []
    return sorted(path for path in _walk(root) if path.name == MEMLOG)


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root``: at most :data:`MAX_DEPTH` levels and :data:`MAX_DIRS`
    directories, skipping dependency and VCS folders, so a poll never walks a disk."""
    base = len(root.parts)
    for visited, (directory, subdirectories, files) in enumerate(os.walk(root), 1):
        if visited > MAX_DIRS:
            return
        depth = len(Path(directory).parts) - base
        subdirectories[:] = sorted(
            name for name in subdirectories
            if name not in _SKIPPED_DIRS and depth < MAX_DEPTH)
        for name in files:
            yield Path(directory) / name
