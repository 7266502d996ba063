"""StatsD line formats (etsy, dogstatsd, telegraf) and datagram packing.

A StatsD line is ``<name>:<value>|<type>[|@<rate>]`` plus the flavor's way of
carrying labels. The three flavors, as Micrometer names them:

* ``etsy``: no tags; label names and values are folded into the dotted name,
  ``yolo.handoffs.from_agent.pm.to_agent.dev:1|c``.
* ``dogstatsd``: tags after the type and rate, ``yolo.handoffs:1|c|#from_agent:pm,to_agent:dev``.
* ``telegraf``: InfluxDB-style tags on the name, ``yolo.handoffs,from_agent=pm,to_agent=dev:1|c``.

Every label value is sanitised for its flavor, so no orchestrator-supplied text can
break the line syntax (``:``, ``|``, ``,``, ``#``, ``=``, newlines) or, for etsy, add
levels to the dotted hierarchy. Numbers are written in plain decimal notation, never
with an exponent: the Etsy daemon reads a sample rate with ``/^@([\\d.]+)/`` and would
misread ``@8.5e-06``.

:func:`pack` joins lines into datagrams of at most ``max_bytes`` bytes without ever
splitting a line, keeping a group of lines (a negative gauge's reset and value) in
one datagram so that UDP cannot reorder them.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Flavor = Literal["etsy", "dogstatsd", "telegraf"]
FLAVORS: tuple[str, ...] = ("etsy", "dogstatsd", "telegraf")
#: Flavors whose servers read several ``:``-separated values on one line.
MERGING_FLAVORS = frozenset({"etsy", "telegraf"})

COUNTER, GAUGE, TIMER = "c", "g", "ms"

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")  # etsy: no dots inside a folded segment
_DOG_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_\-:./]")
_TELEGRAF_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./]")


def sanitize_name(name: str) -> str:
    """A metric name safe in every flavor: letters, digits, ``_``, ``-`` and dots."""
    cleaned = _NAME_UNSAFE.sub("_", name).strip(".")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    return cleaned or "_"


def _clean(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub("_", text) or "_"


@dataclass(frozen=True)
class LineHead:
    """The parts of a line around ``:<value>|<type>[|@rate]``, computed once per series."""

    before: str  # name, with etsy's folded labels or telegraf's tags
    after: str = ""  # dogstatsd's ``|#tags``

    def line(self, value: str, kind: str, rate: str | None = None) -> str:
        return f"{self.before}:{value}{self.tail(kind, rate)}"

    def tail(self, kind: str, rate: str | None = None) -> str:
        """Everything after the value: the same for all values of one kind and rate."""
        sampled = f"|@{rate}" if rate is not None else ""
        return f"|{kind}{sampled}{self.after}"


def line_head(flavor: str, name: str, label_names: Sequence[str],
              label_values: Sequence[str]) -> LineHead:
    """How ``flavor`` writes metric ``name`` with these labels (sanitised)."""
    name = sanitize_name(name)
    pairs = list(zip(label_names, label_values, strict=True))
    if flavor == "etsy":
        folded = "".join(f".{_clean(_SEGMENT_UNSAFE, key)}.{_clean(_SEGMENT_UNSAFE, value)}"
                         for key, value in pairs)
        return LineHead(name + folded)
    if flavor == "dogstatsd":
        tags = ",".join(f"{_clean(_DOG_TAG_UNSAFE, key)}:{_clean(_DOG_TAG_UNSAFE, value)}"
                        for key, value in pairs)
        return LineHead(name, f"|#{tags}" if tags else "")
    if flavor == "telegraf":
        tags = "".join(f",{_clean(_TELEGRAF_TAG_UNSAFE, key)}={_clean(_TELEGRAF_TAG_UNSAFE, value)}"
                       for key, value in pairs)
        return LineHead(name + tags)
    raise ValueError(f"unknown StatsD flavor {flavor!r}; expected one of {', '.join(FLAVORS)}")


def format_number(value: float) -> str:
    """Shortest exact decimal text of a finite float, without exponent or trailing ``.0``."""
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    text = repr(float(value))  # shortest exact digits; only exponents need Decimal
    if "e" in text:
        text = format(Decimal(text), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_rounded(value: float, digits: int = 3) -> str:
    """``format_number(round(value, digits))`` for timer values, in one formatting step.

    Fixed-point formatting rounds the binary value exactly as ``round`` does; beyond
    1e12 the shortest text of the rounded float may have fewer digits, so those
    (and non-finite values) take the general path.
    """
    if -1e12 < value < 1e12:
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return format_number(round(value, digits))


def integer_rate(weight: int) -> str | None:
    """The rate text whose inverse a server reads as exactly ``weight`` lines.

    ``1/(1/q)`` is below ``q`` in floating point for many ``q`` (93, 99, 105...),
    and Telegraf truncates ``int(1/rate)``; the rate is nudged down to the nearest
    float whose inverse is at least ``q``, so every server counts ``q``.
    """
    if weight <= 1:
        return None
    rate = 1.0 / weight
    while 1.0 / rate < weight:
        rate = math.nextafter(rate, 0.0)
    return format_number(rate)


def timer_rates(sampled: int, true_count: int,
                rng: random.Random | None = None) -> list[str | None]:
    """Per sampled value, the rate that makes the server's count the true count.

    With ``q, r = divmod(true_count, sampled)``, ``r`` values (chosen at random, so
    no part of the interval is favoured) carry rate ``1/(q+1)`` and the others
    ``1/q``: the server counts ``r(q+1) + (sampled-r)q = true_count``. Integer
    weights keep the count exact on servers that sum ``1/rate`` (Etsy, DogStatsD)
    and on Telegraf, which adds each value ``int(1/rate)`` times; a single rate
    ``sampled/true_count`` would lose up to a quarter of the count there.
    """
    if sampled <= 0:
        return []
    weight, heavier = divmod(max(true_count, sampled), sampled)
    light = integer_rate(weight)
    rates: list[str | None] = [light] * sampled
    if heavier:
        heavy = integer_rate(weight + 1)
        for index in (rng or random).sample(range(sampled), heavier):
            rates[index] = heavy
    return rates


def gauge_lines(head: LineHead, value: float, flavor: str) -> list[str]:
    """Lines that set a gauge to ``value``.

    Etsy and Telegraf read a leading sign as a change of the current value, so a
    negative absolute value is sent as a reset to 0 followed by the value; the two
    lines must travel in one datagram (see :func:`pack`).
    """
    text = format_number(value)
    if value < 0 and flavor in ("etsy", "telegraf"):
        return [head.line("0", GAUGE), head.line(text, GAUGE)]
    return [head.line(text, GAUGE)]


def is_finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass
class Datagram:
    """One payload and the indexes of the line groups it carries."""

    payload: bytes
    groups: list[int] = field(default_factory=list)
    lines: int = 0


@dataclass
class Packing:
    datagrams: list[Datagram]
    too_long: list[int]  # groups larger than max_bytes: never sent


def pack(groups: Iterable[Sequence[str]], max_bytes: int) -> Packing:
    """Pack groups of lines, in order, into newline-separated datagrams.

    No datagram exceeds ``max_bytes``; no line or group is split across datagrams.
    A group that cannot fit even in an empty datagram is reported in ``too_long``.
    """
    datagrams: list[Datagram] = []
    too_long: list[int] = []
    parts: list[bytes] = []
    size = 0
    current = Datagram(b"")
    for index, group in enumerate(groups):
        encoded = (group[0].encode("utf-8") if len(group) == 1
                   else b"\n".join(line.encode("utf-8") for line in group))
        if not encoded:
            continue
        if len(encoded) > max_bytes:
            too_long.append(index)
            continue
        needed = len(encoded) + (1 if parts else 0)
        if parts and size + needed > max_bytes:
            current.payload = b"\n".join(parts)
            datagrams.append(current)
            current, parts, size = Datagram(b""), [], 0
            needed = len(encoded)
        parts.append(encoded)
        size += needed
        current.groups.append(index)
        current.lines += len(group)
    if parts:
        current.payload = b"\n".join(parts)
        datagrams.append(current)
    return Packing(datagrams, too_long)
