"""A BMAD memlog (``.memlog.md``), parsed into the kinds of its entries.

The format is BMAD's ``src/scripts/memlog.py``: a frontmatter block between ``---``
lines, then one entry per line, ``- (type by who) text``, appended at the end, never
edited. The planning skills (brief, PRD, architecture, spec, brainstorming) log their
decisions, assumptions and ``event`` entries there, and record a blocked or finished run
as an ``event`` entry, since a memlog has no status field.

Only an entry's kind is kept, never its text: our signals carry no content. Whether an
``event`` entry reports a halt is read from its text (``blocked``, ``halt``) and kept
as a flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENTRY = re.compile(r"^- (?:\((?P<tag>[^)]*)\) )?")
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_HALTED = re.compile(r"\b(blocked|halt(ed)?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One memlog line: its kind (``idea``, ``decision``, ``event``, ..., ``note`` when
    untagged, ``other`` when the tag is not a short word) and whether it reports a halt."""

    kind: str
    halted: bool


def parse_entries(text: str) -> list[Entry]:
    """The entries of a memlog's text, in order; the frontmatter is skipped."""
    lines = text.splitlines()
    start = 0
    if lines and lines[0] == "---":
        end = next((i for i in range(1, len(lines)) if lines[i] == "---"), None)
        start = len(lines) if end is None else end + 1
    return [_entry(line) for line in lines[start:] if line.startswith("- ")]


def _entry(line: str) -> Entry:
    match = _ENTRY.match(line)
    tag = (match.group("tag") if match else None) or ""
    kind = tag.split(" by ", 1)[0].strip().lower() if not tag.startswith("by ") else ""
    if not kind:
        kind = "note"
    elif not _KIND.match(kind):
        kind = "other"
    halted = kind == "event" and bool(_HALTED.search(line))
    return Entry(kind, halted)
