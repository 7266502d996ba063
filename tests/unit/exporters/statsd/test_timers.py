"""Timer values formatted a series at a time and cut into lines from runs give the lines
the value-by-value functions give, character for character."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from exporters.statsd.fixed import fixed_text
from exporters.statsd.format import format_rounded, timer_rates
from exporters.statsd.timers import TimerBacklog, timer_tails, timer_text


def timer_lines(pending: Iterable[tuple[str, str]], merge: bool,
                max_bytes: int) -> Iterator[tuple[str, int]]:
    """The value-by-value reference: lines for pending timer values, in order, and
    how many values each carries.

    Each value is ``(head, "value|ms[|@rate][tags]")``. With ``merge``, a run of
    values of one series shares a line, ``head:v1|ms:v2|ms``, up to ``max_bytes``
    (Etsy and Telegraf read each ``:``-separated part as its own observation), so
    the name is not repeated for every value.
    """
    if not merge:
        for head, part in pending:
            yield f"{head}:{part}", 1
        return
    head, parts, size = None, [], 0
    for next_head, part in pending:
        if next_head == head and size + 1 + len(part) <= max_bytes:
            parts.append(part)
            size += 1 + len(part)
            continue
        if parts:
            yield f"{head}:{':'.join(parts)}", len(parts)
        head, parts, size = next_head, [part], len(next_head.encode()) + 1 + len(part)
    if parts:
        yield f"{head}:{':'.join(parts)}", len(parts)


#: Timer tails of every shape: no rate, a rate, dogstatsd tags (with digits and zeros).
TAILS = ["|ms", "|ms|@0.25", "|ms|@0.003906", "|ms|@0.5|#agent:dev0,n:100", "|ms|#%x:1"]
_VALUE = st.one_of(
    st.floats(-1e300, 1e300),  # finite once scaled to milliseconds
    st.floats(-1e4, 1e4),
    st.integers(0, 10**6).map(lambda n: n / 1000),  # trailing zeros to strip
    st.integers(-10, 10).map(lambda n: n / 10_000),  # rounds to (minus) zero
    st.sampled_from([0.0, -0.0, 1e12, -1e12, 999_999_999_999.9996, 5e-324]),
    st.integers(-(10**13), 10**13),
    # Exact ties (odd multiples of 1/16 are halves of a thousandth) and the floats
    # an ulp or two either side of a half or a whole thousandth: where the product
    # by 1000 may round across it.
    st.integers(-(10**7), 10**7).map(lambda n: (2 * n + 1) / 16),
    st.tuples(st.integers(-(10**9), 10**9), st.sampled_from([0.0, 0.5]),
              st.integers(-2, 2)).map(
        lambda near: _ulps_from((near[0] + near[1]) / 1000, near[2])),
)


def _ulps_from(value: float, steps: int) -> float:
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
    return value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_VALUE, st.sampled_from(TAILS)), max_size=40),
       st.sampled_from([1.0, 1000.0]))
def test_timer_text_is_format_rounded_of_each_value_with_its_tail(
        values: list[tuple[float, str]], scale: float) -> None:
    templates = ["%.3f" + tail.replace("%", "%%") for _, tail in values]
    text = timer_text([value for value, _ in values], scale, templates)
    expected = [format_rounded(value * scale) + tail for value, tail in values]
    assert (text.split("\n") if values else []) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_VALUE, st.sampled_from(TAILS)), max_size=40),
       st.sampled_from([1.0, 1000.0]))
def test_fixed_text_writes_what_format_rounded_gives_or_declines(
        values: list[tuple[float, str]], scale: float) -> None:
    """The digit-by-digit writer (what a compiled build uses) on its own, in either
    build: the same text, or None when a value is beyond the fixed-point range."""
    templates = ["%.3f" + tail.replace("%", "%%") for _, tail in values]
    text = fixed_text([value for value, _ in values], scale, templates)
    if any(not -1e12 < value * scale < 1e12 for value, _ in values):
        assert text is None
        return
    expected = [format_rounded(value * scale) + tail for value, tail in values]
    assert (text.split("\n") if values else [""]) == (expected or [""])


def test_fixed_text_rounds_ties_to_even_and_grows_its_buffer() -> None:
    values = [0.0625, 0.1875, -0.0625, 2.5e-4, 999_999_999.9995, 123456789012.0] * 40
    tail = "|ms|#" + "t" * 200  # more than the buffer's first guess per value
    text = fixed_text(values, 1.0, ["%.3f" + tail] * len(values))
    assert text is not None
    assert text.split("\n")[:6] == [format_rounded(value) + tail for value in values[:6]]
    assert text.split("\n")[:2] == ["0.062" + tail, "0.188" + tail]
    assert len(text.split("\n")) == len(values)


def test_values_beyond_fixed_point_format_one_by_one_as_before() -> None:
    values = [1.5, 2e12, 0.25, 1e300]
    assert timer_text(values, 1000.0, ["%.3f|ms"] * 4).split("\n") == [
        format_rounded(value * 1000.0) + "|ms" for value in values]
    assert timer_text(values, 1000.0, ["%.3f|ms"] * 4).split("\n")[1] == "2000000000000000|ms"


_HEADS = st.sampled_from(["yolo.h", "yolo.handoff.duration.from_agent.pm.to_agent.dev",
                          "é" * 12, "yolo.h,agent=qa"])
_PART = st.builds(lambda value, tail: format_rounded(value) + tail,
                  st.floats(0, 1e9), st.sampled_from(TAILS[:3]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_HEADS, st.lists(_PART, min_size=1, max_size=60)), max_size=6),
       st.sampled_from([8, 30, 64, 200, 1432]), st.booleans())
def test_lines_are_timer_lines_of_the_same_values(
        runs: list[tuple[str, list[str]]], max_bytes: int, merge: bool) -> None:
    backlog = TimerBacklog()
    pairs = []
    for head, parts in runs:
        backlog.add(head, "\n".join(parts), len(parts))
        pairs += [(head, part) for part in parts]
    assert len(backlog) == len(pairs)
    assert list(backlog.values()) == pairs
    assert backlog.lines(merge, max_bytes) == list(timer_lines(pairs, merge, max_bytes))
    kept = TimerBacklog()
    kept.replace(pairs[len(pairs) // 3:])
    assert list(kept.values()) == pairs[len(pairs) // 3:]
    assert kept.lines(merge, max_bytes) == list(timer_lines(pairs[len(pairs) // 3:], merge,
                                                            max_bytes))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.integers(0, 2000), st.integers(0, 2**32))
def test_timer_tails_carry_the_rates_of_timer_rates(sampled: int, extra: int,
                                                    seed: int) -> None:
    true_count = sampled + extra
    tails = timer_tails(sampled, true_count, {rate: f"|ms|@{rate}" if rate else "|ms"
                                              for rate in set(timer_rates(sampled, true_count))},
                        random.Random(seed))
    expected = timer_rates(sampled, true_count, random.Random(seed))
    assert sorted(tails) == sorted(f"|ms|@{rate}" if rate else "|ms" for rate in expected)
    assert timer_tails(0, 5, {}) == []


def test_which_values_carry_the_heavier_rate_is_uniform() -> None:
    """Each position is heavy as often as any other, whether the heavy or the light
    values are the ones drawn."""
    rng = random.Random(3)
    for sampled, true_count in ((10, 13), (10, 18)):
        heavy = [0] * sampled
        rates = {rate for rate in timer_rates(sampled, true_count)}
        heavier = min(rates, key=lambda rate: float(rate) if rate else 1.0)
        for _ in range(4000):
            for index, rate in enumerate(timer_tails(sampled, true_count,
                                                     {r: r for r in rates}, rng)):
                heavy[index] += rate == heavier
        expected = 4000 * (true_count % sampled) / sampled
        assert all(abs(count - expected) < 0.08 * expected for count in heavy), heavy
