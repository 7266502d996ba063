"""A :class:`~telemetry.profiling.stacks.Profile` in the formats people open.

* ``speedscope``: speedscope's JSON file format, one "sampled" profile per thread,
  in time order (open it at https://www.speedscope.app or ``speedscope FILE``).
* ``collapsed``: Brendan Gregg's folded stacks (``thread;outer;inner COUNT``), for
  ``flamegraph.pl``, inferno, speedscope or a quick ``sort -k2 -n``.
* ``html`` and ``text``: pyinstrument's call-tree renderers, fed with the same
  samples; they need the ``profiling`` extra (``pip install yolo-telemetry[profiling]``).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from types import CodeType
from typing import Any

from telemetry.profiling.stacks import Profile, ThreadProfile

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


@dataclass(frozen=True)
class Format:
    name: str
    content_type: str
    extension: str
    needs_pyinstrument: bool = False


FORMATS: dict[str, Format] = {
    "speedscope": Format("speedscope", "application/json", "speedscope.json"),
    "collapsed": Format("collapsed", "text/plain; charset=utf-8", "collapsed.txt"),
    "html": Format("html", "text/html; charset=utf-8", "html", needs_pyinstrument=True),
    "text": Format("text", "text/plain; charset=utf-8", "txt", needs_pyinstrument=True),
}


class FormatUnavailable(RuntimeError):
    """The format needs a package that is not installed."""


def pyinstrument_available() -> bool:
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        return False
    return True


class _Paths:
    """Short file names (relative to the nearest ``sys.path`` entry), cached."""

    def __init__(self) -> None:
        self._roots = sorted({os.path.abspath(p) for p in sys.path if p}, key=len, reverse=True)
        self._cache: dict[str, str] = {}

    def short(self, path: str) -> str:
        found = self._cache.get(path)
        if found is None:
            found = path
            for root in self._roots:
                if path.startswith(root + os.sep):
                    found = path[len(root) + 1:]
                    break
            self._cache[path] = found
        return found


def _thread_label(thread: ThreadProfile) -> str:
    return f"{thread.name} ({thread.ident})"


def speedscope(profile: Profile) -> dict[str, Any]:
    """The profile as a speedscope file (a dict ready for ``json.dumps``)."""
    paths = _Paths()
    frame_index: dict[CodeType, int] = {}
    frames: list[dict[str, Any]] = []
    profiles = []
    for thread in profile.threads:
        samples = []
        for stack in thread.stacks:
            indices = []
            for code in stack:
                index = frame_index.get(code)
                if index is None:
                    index = frame_index[code] = len(frames)
                    frames.append({"name": code.co_qualname,
                                   "file": paths.short(code.co_filename),
                                   "line": code.co_firstlineno})
                indices.append(index)
            samples.append(indices)
        weights = [round(weight, 6) for weight in thread.weights]
        profiles.append({
            "type": "sampled", "name": _thread_label(thread), "unit": "seconds",
            "startValue": 0, "endValue": round(sum(weights), 6),
            "samples": samples, "weights": weights,
        })
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "name": profile.title,
        "exporter": "yolo-telemetry",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": profiles,
    }


def collapsed(profile: Profile) -> str:
    """Folded stacks: one line per distinct stack, ``root;...;leaf COUNT``."""
    paths = _Paths()
    names: dict[CodeType, str] = {}
    lines: dict[str, int] = {}
    for thread in profile.threads:
        root = "thread " + _thread_label(thread).replace(";", ":")
        for stack in thread.stacks:
            parts = [root]
            for code in stack:
                name = names.get(code)
                if name is None:
                    name = names[code] = (f"{code.co_qualname} ({paths.short(code.co_filename)}:"
                                          f"{code.co_firstlineno})").replace(";", ":")
                parts.append(name)
            line = ";".join(parts)
            lines[line] = lines.get(line, 0) + 1
    return "".join(f"{line} {count}\n" for line, count in lines.items())


def _pyinstrument_session(profile: Profile) -> Any:
    from pyinstrument.session import Session

    identifiers: dict[CodeType, str] = {}
    records = []
    for thread in profile.threads:
        root = f"{thread.name}\x00<thread>\x00{thread.ident}"
        for stack, weight in zip(thread.stacks, thread.weights, strict=True):
            call_stack = [root]
            for code in stack:
                identifier = identifiers.get(code)
                if identifier is None:
                    identifier = f"{code.co_name}\x00{code.co_filename}\x00{code.co_firstlineno}"
                    owner, _, _ = code.co_qualname.rpartition(".")
                    if owner and not owner.endswith("<locals>"):
                        identifier += f"\x01c{owner}"
                    identifiers[code] = identifier
                call_stack.append(identifier)
            records.append((call_stack, weight))
    # pyinstrument trims the call tree's stem up to where profiling started; there
    # is no such point here, so the stem is the tree's root and nothing is trimmed.
    start = [f"{profile.threads[0].name}\x00<thread>\x00{profile.threads[0].ident}"
             if len(profile.threads) == 1 else "[root]"]
    return Session(
        frame_records=records, start_time=profile.started_at, duration=profile.duration_s,
        min_interval=profile.interval_s, max_interval=profile.interval_s,
        sample_count=len(records), start_call_stack=start, target_description=profile.title,
        cpu_time=profile.cpu_s, sys_path=list(sys.path),
        sys_prefixes=Session.current_sys_prefixes(),
    )


def html(profile: Profile) -> str:
    """pyinstrument's interactive HTML call tree of the profile."""
    try:
        from pyinstrument.renderers import HTMLRenderer
    except ImportError as error:
        raise FormatUnavailable("format html needs pyinstrument: "
                                "pip install yolo-telemetry[profiling]") from error
    return HTMLRenderer().render(_pyinstrument_session(profile))


def text(profile: Profile) -> str:
    """pyinstrument's call tree as plain text, for a terminal."""
    try:
        from pyinstrument.renderers import ConsoleRenderer
    except ImportError as error:
        raise FormatUnavailable("format text needs pyinstrument: "
                                "pip install yolo-telemetry[profiling]") from error
    return ConsoleRenderer(unicode=True, color=False).render(_pyinstrument_session(profile))


def render(profile: Profile, format_name: str) -> bytes:
    """The profile in ``format_name`` (a key of :data:`FORMATS`), encoded."""
    if format_name == "speedscope":
        return json.dumps(speedscope(profile), separators=(",", ":")).encode()
    if format_name == "collapsed":
        return collapsed(profile).encode()
    if format_name == "html":
        return html(profile).encode()
    if format_name == "text":
        return text(profile).encode()
    raise ValueError(f"unknown profile format {format_name!r}")
