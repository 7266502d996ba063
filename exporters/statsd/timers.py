"""Timer values of the StatsD exporter: formatted a series at a time, kept in runs of
one series until delivered.

A flush at the reference workflow's rate sends a few thousand timer values (up to
``reservoir_size`` per series). Formatting and merging them one value at a time,
through a generator per value and a queue of ``(head, part)`` pairs, was most of a
flush's CPU. Here a series' values are formatted together (:func:`timer_text`: one
``%`` format of the whole reservoir with each value's tail, ``|ms|@rate``, in the
template; trailing zeros stripped with a few ``str.replace`` passes) into one text
of newline-separated parts, kept as a run of the :class:`TimerBacklog`; lines are
cut from it with ``rfind`` and ``count``, a few calls per line instead of a loop
per value.

What comes out is, line for line, what formatting each value with
:func:`~exporters.statsd.format.format_rounded` and merging them one by one gives;
``tests/unit/exporters/statsd/test_timers.py`` checks it against that value-by-value reference.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence

from exporters.statsd.fixed import fixed_text
from exporters.statsd.format import format_rounded, integer_rate
from telemetry.compiled import is_compiled

#: ``format_rounded``'s fixed-point range: beyond it, the value-by-value path.
_LIMIT = 1e12
#: Compiled, :func:`~exporters.statsd.fixed.fixed_text` writes a series' values five
#: times faster than one ``%`` format; in pure Python it is the slower of the two.
_WRITE_FIXED = is_compiled("exporters.statsd.fixed")


def timer_text(values: Sequence[float], scale: float, templates: Sequence[str]) -> str:
    """The parts ``format_rounded(value * scale) + tail`` of one series' values, joined
    by newlines; ``templates`` holds ``"%.3f" + tail`` per value, every tail a timer's
    (``|ms...``), with ``%`` doubled.

    Every value of a finite reservoir within ``format_rounded``'s fixed-point range
    is written with 3 decimals in one ``%`` format; then the trailing zeros of the
    decimals (at most 3) and a bare point are removed from all of them at once: a
    value's text is the only thing followed by the type, ``|m(s)``. A compiled build
    writes the same text digit by digit (:mod:`exporters.statsd.fixed`).
    """
    if _WRITE_FIXED:
        text = fixed_text(values, scale, templates)
        if text is not None:
            return text
    scaled = values if scale == 1.0 else [value * scale for value in values]
    if not scaled:
        return ""
    total = sum(scaled)  # NaN or infinite if any value is (or if the sum overflows)
    lowest = min(scaled) if total - total == 0 else -math.inf
    # Without negative values, a total within the range bounds every value.
    if lowest <= -_LIMIT or (total if lowest >= 0 else max(scaled)) >= _LIMIT:
        return "\n".join(format_rounded(value) + template[4:].replace("%%", "%")
                         for value, template in zip(scaled, templates, strict=True))
    text = "\n".join(templates) % tuple(scaled)
    if "0|m" in text:
        text = text.replace("00|m", "|m").replace("0|m", "|m").replace(".|m", "|m")
    if "-0|m" in text:  # a negative value that rounds to zero: format_rounded writes 0
        text = "\n".join("0" + part[2:] if part.startswith("-0|m") else part
                         for part in text.split("\n"))
    return text


def timer_tails(sampled: int, true_count: int, tail: Mapping[str | None, str],
                rng: random.Random | None = None) -> list[str]:
    """Per sampled value, the tail (or template) carrying the rate of
    :func:`~exporters.statsd.format.timer_rates`; ``tail`` maps a rate to it.

    The same rates and the same choice of values: ``r`` of them, a uniformly random
    subset, carry the heavier rate. When most do, the light ones are drawn instead
    (the complement of a uniform subset is uniform), which halves the draws.
    """
    if sampled <= 0:
        return []
    weight, heavier = divmod(max(true_count, sampled), sampled)
    light = tail[integer_rate(weight)]
    if not heavier:
        return [light] * sampled
    heavy = tail[integer_rate(weight + 1)]
    if 2 * heavier <= sampled:
        tails, odd, draws = [light] * sampled, heavy, heavier
    else:
        tails, odd, draws = [heavy] * sampled, light, sampled - heavier
    for index in (rng or random).sample(range(sampled), draws):
        tails[index] = odd
    return tails


class TimerBacklog:
    """Timer values waiting to be sent, in order, as runs of one line head: the head,
    the run's parts joined by newlines (:func:`timer_text`), and their number.

    ``len()`` is the number of values (parts), as a queue of single values would
    have it.
    """

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, int]] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, head: str, text: str, count: int) -> None:
        if count:
            self.runs.append((head, text, count))
            self._size += count

    def clear(self) -> None:
        self.runs, self._size = [], 0

    def values(self) -> Iterator[tuple[str, str]]:
        """Every value as ``(head, part)``, in order."""
        for head, text, _ in self.runs:
            for part in text.split("\n"):
                yield head, part

    def replace(self, values: Sequence[tuple[str, str]]) -> None:
        """Keep exactly ``values`` (``(head, part)`` pairs, in order)."""
        self.clear()
        index = 0
        while index < len(values):
            head, stop = values[index][0], index + 1
            while stop < len(values) and values[stop][0] == head:
                stop += 1
            self.add(head, "\n".join(part for _, part in values[index:stop]), stop - index)
            index = stop

    def lines(self, merge: bool, max_bytes: int) -> list[tuple[str, int]]:
        """Lines for the values, in order, and how many values each carries.

        Without ``merge`` one line per value. With it, adjacent values of one series
        share lines ``head:v1|ms:v2|ms`` of at most ``max_bytes`` (Etsy and Telegraf
        read each ``:``-separated part as its own observation), so the name is not
        repeated for every value."""
        if not merge:
            return [(f"{head}:{part}", 1) for head, part in self.values()]
        out: list[tuple[str, int]] = []
        runs = self.runs
        index = 0
        while index < len(runs):  # adjacent runs of one head share lines
            head, text, _ = runs[index]
            index += 1
            if index < len(runs) and runs[index][0] == head:
                texts = [text]
                while index < len(runs) and runs[index][0] == head:
                    texts.append(runs[index][1])
                    index += 1
                text = "\n".join(texts)
            _cut(head, text, max_bytes, out)
        return out


def _cut(head: str, text: str, max_bytes: int, out: list[tuple[str, int]]) -> None:
    """``head:p1:p2...`` lines of at most ``max_bytes`` from newline-separated parts
    (a part too long for any line still gets a line of its own), as merging the parts
    one by one would cut them: the newlines become the
    separators, of the same length, so a line ends at the last newline that fits.
    """
    prefix = head + ":"
    room = max_bytes - len(prefix.encode())  # for the parts and their separators
    size = len(text)
    start = 0
    while start < size:
        if size - start <= room:
            stop = size
        else:
            stop = text.rfind("\n", start, max(start + room + 1, start))  # not from the end
            if stop < 0:  # the first part alone is too long: it goes alone
                stop = text.find("\n", start)
                stop = size if stop < 0 else stop
        out.append((prefix + text[start:stop].replace("\n", ":"),
                    text.count("\n", start, stop) + 1))
        start = stop + 1
