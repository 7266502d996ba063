"""StatsD line formats per flavor, sanitising, number text, sample rates, and packing."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporters.statsd.format import (
    format_number,
    format_rounded,
    gauge_lines,
    integer_rate,
    line_head,
    pack,
    sanitize_name,
    timer_rates,
)
from telemetry import catalogue as cat

PAIR = (("from_agent", "to_agent"), ("pm", "dev"))


def test_etsy_folds_labels_into_the_dotted_name() -> None:
    head = line_head("etsy", cat.HANDOFFS.statsd_name("yolo"), *PAIR)
    assert head.line("1", "c") == "yolo.handoffs.from_agent.pm.to_agent.dev:1|c"


def test_dogstatsd_puts_tags_after_type_and_rate() -> None:
    head = line_head("dogstatsd", cat.HANDOFFS.statsd_name("yolo"), *PAIR)
    assert head.line("1", "c") == "yolo.handoffs:1|c|#from_agent:pm,to_agent:dev"
    timer = line_head("dogstatsd", cat.HANDOFF_DURATION.statsd_name("yolo"), *PAIR)
    assert timer.line("12.5", "ms", "0.25") == (
        "yolo.handoff.duration:12.5|ms|@0.25|#from_agent:pm,to_agent:dev")


def test_telegraf_puts_influx_tags_on_the_name() -> None:
    head = line_head("telegraf", cat.HANDOFFS.statsd_name("yolo"), *PAIR)
    assert head.line("1", "c") == "yolo.handoffs,from_agent=pm,to_agent=dev:1|c"
    timer = line_head("telegraf", cat.HANDOFF_DURATION.statsd_name("yolo"), *PAIR)
    assert timer.line("3", "ms", "0.5") == (
        "yolo.handoff.duration,from_agent=pm,to_agent=dev:3|ms|@0.5")


def test_unlabelled_metrics_have_no_tag_syntax_in_any_flavor() -> None:
    for flavor in ("etsy", "dogstatsd", "telegraf"):
        head = line_head(flavor, cat.AGENTS_ACTIVE.statsd_name("yolo"), (), ())
        assert head.line("2", "g") == "yolo.agents.active:2|g"


def test_empty_prefix_gives_the_bare_name() -> None:
    head = line_head("etsy", cat.HANDOFFS.statsd_name(""), *PAIR)
    assert head.line("1", "c") == "handoffs.from_agent.pm.to_agent.dev:1|c"


@pytest.mark.parametrize(("flavor", "expected"), [
    ("etsy", "yolo.errors.agent.dev_qa_x_y.error_type.a_b_c_d_e_f:1|c"),
    ("dogstatsd", "yolo.errors:1|c|#agent:dev/qa.x_y,error_type:a:b_c_d_e_f"),
    ("telegraf", "yolo.errors,agent=dev/qa.x_y,error_type=a_b_c_d_e_f:1|c"),
])
def test_hostile_label_values_cannot_break_the_line(flavor: str, expected: str) -> None:
    head = line_head(flavor, "yolo.errors", ("agent", "error_type"), ("dev/qa.x y", "a:b|c,d#e\nf"))
    line = head.line("1", "c")
    assert line == expected
    assert "\n" not in line and line.count("|") == 1 + (flavor == "dogstatsd")


def test_names_are_sanitised() -> None:
    assert sanitize_name("my app..yolo.handoffs:") == "my_app.yolo.handoffs_"
    assert sanitize_name("...") == "_"


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (-3.0, "-3"), (0.25, "0.25"), (1234.5, "1234.5"), (-0.0, "0"),
    (8.5e-06, "0.0000085"), (1e20, "100000000000000000000"), (0.1 + 0.2, "0.30000000000000004"),
])
def test_numbers_are_plain_decimals_without_exponent(value: float, text: str) -> None:
    assert format_number(value) == text


def test_integer_rates_read_back_as_exactly_the_weight() -> None:
    assert integer_rate(1) is None
    assert integer_rate(4) == "0.25"
    assert int(1 / (1 / 93)) == 92  # why the rate is nudged
    assert int(1 / float(integer_rate(93))) == 93
    tiny = integer_rate(3_000_000)
    assert tiny is not None and "e" not in tiny


def test_timer_rates_without_sampling_write_no_rate() -> None:
    assert timer_rates(5, 5) == [None] * 5
    assert timer_rates(0, 0) == []


@settings(max_examples=300, deadline=None)
@given(sampled=st.integers(min_value=1, max_value=300),
       extra=st.integers(min_value=0, max_value=10_000_000))
def test_timer_rates_make_every_server_count_the_true_count(sampled: int, extra: int) -> None:
    true_count = sampled + extra
    rates = timer_rates(sampled, true_count, random.Random(1))
    assert len(rates) == sampled
    weights = [1.0 if rate is None else 1 / float(rate) for rate in rates]
    assert sum(weights) == pytest.approx(true_count, rel=1e-12)  # Etsy, DogStatsD: sum 1/rate
    assert sum(int(w) for w in weights) == true_count  # Telegraf: int(1/rate) copies each
    assert all(rate is None or re.fullmatch(r"0\.\d+", rate) for rate in rates)


def test_negative_gauges_reset_first_where_a_sign_means_a_change() -> None:
    etsy = line_head("etsy", "yolo.x", (), ())
    assert gauge_lines(etsy, -5.0, "etsy") == ["yolo.x:0|g", "yolo.x:-5|g"]
    assert gauge_lines(etsy, -5.0, "telegraf") == ["yolo.x:0|g", "yolo.x:-5|g"]
    assert gauge_lines(etsy, -5.0, "dogstatsd") == ["yolo.x:-5|g"]
    assert gauge_lines(etsy, 7.0, "etsy") == ["yolo.x:7|g"]


def test_pack_fills_datagrams_up_to_the_limit_exactly() -> None:
    lines = [[f"m{i}:1|c"] for i in range(10)]  # 6 bytes each, 7 with a separator
    packing = pack(lines, 20)  # 6 + 7 = 13 fits, + 7 = 20 fits, the 4th would be 27
    assert [d.payload for d in packing.datagrams][:2] == [
        b"m0:1|c\nm1:1|c\nm2:1|c", b"m3:1|c\nm4:1|c\nm5:1|c"]
    assert all(len(d.payload) <= 20 for d in packing.datagrams)
    assert [d.groups for d in packing.datagrams][-1] == [9]


def test_pack_reports_a_line_longer_than_the_limit_instead_of_sending_it() -> None:
    packing = pack([["a:1|c"], ["x" * 100 + ":1|c"], ["b:1|c"]], 64)
    assert packing.too_long == [1]
    assert [d.payload for d in packing.datagrams] == [b"a:1|c\nb:1|c"]


def test_pack_keeps_a_group_in_one_datagram() -> None:
    packing = pack([["aaaa:1|c"], ["x:0|g", "x:-5|g"]], 16)
    assert [d.payload for d in packing.datagrams] == [b"aaaa:1|c", b"x:0|g\nx:-5|g"]
    assert packing.datagrams[1].lines == 2


_line = st.text(alphabet="abcdefghij.:|@0123456789", min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(groups=st.lists(st.lists(_line, min_size=1, max_size=3), max_size=60),
       limit=st.integers(min_value=64, max_value=400))
def test_pack_never_exceeds_the_limit_never_splits_and_loses_nothing(
        groups: list[list[str]], limit: int) -> None:
    packing = pack(groups, limit)
    sent: list[str] = []
    for datagram in packing.datagrams:
        assert 0 < len(datagram.payload) <= limit
        assert datagram.lines == sum(len(groups[i]) for i in datagram.groups)
        sent.extend(datagram.payload.decode().split("\n"))
    expected = [line for i, group in enumerate(groups) if i not in packing.too_long
                for line in group]
    assert sent == expected  # every line whole, once, in order
    for index in packing.too_long:
        assert len("\n".join(groups[index]).encode()) > limit


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_rounded_is_format_number_of_the_rounded_value(value: float) -> None:
    assert format_rounded(value) == format_number(round(value, 3))


@pytest.mark.parametrize("value", [0.0, -0.0, -0.0004, 0.0005, 0.0015, 2.675, 999999999999.9995])
def test_format_rounded_edge_values(value: float) -> None:
    assert format_rounded(value) == format_number(round(value, 3))
