"""Summary and description templates, in the subset both Prometheus and we render.

Prometheus expands alert annotations with Go templates; the in-process evaluator
must produce the same text, so a definition may only use what both understand:

* ``{{ $value }}`` and ``{{ $labels.NAME }}`` (NAME one of the alert's ``by`` labels),
* ``{{ $value | humanize }}``, ``humanizePercentage``, ``humanizeDuration``,
* ``{{ $value | printf "%.2f" }}`` (any ``%.Nf``).

Anything else is rejected when the config loads, not when the alert fires.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_VALUE = re.compile(
    r"^\s*\$value\s*(?:\|\s*(?:(humanize|humanizePercentage|humanizeDuration)"
    r"|printf\s+\"%\.(\d)f\")\s*)?$")
_LABEL = re.compile(r"^\s*\$labels\.([A-Za-z_][A-Za-z0-9_]*)\s*$")
_SMALL_PREFIXES = ("m", "u", "n", "p", "f", "a", "z", "y")
_LARGE_PREFIXES = ("k", "M", "G", "T", "P", "E", "Z", "Y")


def check_template(text: str, by: Iterable[str], field: str) -> None:
    """Raise ValueError if ``text`` uses anything outside the supported subset."""
    allowed = set(by)
    for match in _ACTION.finditer(text):
        action = match.group(1)
        label = _LABEL.match(action)
        if label:
            if label.group(1) not in allowed:
                raise ValueError(
                    f"{field}: {{{{{action}}}}} names label {label.group(1)!r}, which is not "
                    f"in by ({', '.join(sorted(allowed)) or 'empty'})")
            continue
        if not _VALUE.match(action):
            raise ValueError(
                f"{field}: unsupported template action {{{{{action}}}}}; use $value, "
                f"$labels.NAME, $value | humanize / humanizePercentage / humanizeDuration "
                f"or $value | printf \"%.2f\"")
    rest = _ACTION.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise ValueError(f"{field}: unbalanced {{{{ or }}}}")


def render_template(text: str, labels: Mapping[str, str], value: float) -> str:
    """Expand a checked template the way Prometheus would."""

    def expand(match: re.Match[str]) -> str:
        action = match.group(1)
        label = _LABEL.match(action)
        if label:
            return labels.get(label.group(1), "")
        parsed = _VALUE.match(action)
        if parsed is None:  # unreachable for checked templates
            return match.group(0)
        function, digits = parsed.groups()
        if digits is not None:
            return _go_float(value, f"%.{digits}f")
        if function is None:
            return _go_value(value)
        return {"humanize": humanize, "humanizePercentage": humanize_percentage,
                "humanizeDuration": humanize_duration}[function](value)

    return _ACTION.sub(expand, text)


def _go_float(value: float, spec: str) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return spec % value


def _go_value(value: float) -> str:
    """How Go prints a float64 in a template: the shortest digits that read back
    exactly, in exponent form below 1e-4 and from 1e6 on (strconv 'g', -1)."""
    if math.isnan(value) or math.isinf(value):
        return _go_float(value, "%g")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    exp = len(digits) + exponent - 1
    minus = "-" if sign else ""
    text = "".join(map(str, digits))
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return minus + format(Decimal(text).scaleb(exponent), "f")


def humanize(value: float) -> str:
    """Prometheus' humanize: 4 significant digits and an SI prefix."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _go_float(value, "%.4g")
    if abs(value) < 1:
        return _with_small_prefix(value)
    prefix = ""
    for candidate in _LARGE_PREFIXES:
        if abs(value) < 1000:
            break
        prefix, value = candidate, value / 1000
    return f"{value:.4g}{prefix}"


def _with_small_prefix(value: float) -> str:
    """``value`` (non-zero, below 1 in magnitude) with 4 significant digits and the SI
    prefix (m, u, n, ...) that brings it to 1 or more."""
    prefix = ""
    for candidate in _SMALL_PREFIXES:
        if abs(value) >= 1:
            break
        prefix, value = candidate, value * 1000
    return f"{value:.4g}{prefix}"


def humanize_percentage(value: float) -> str:
    return _go_float(value * 100, "%.4g") + "%"


def humanize_duration(value: float) -> str:
    """Prometheus' humanizeDuration: ``1m 5s``, ``2.5s``, ``250ms``."""
    if math.isnan(value) or math.isinf(value):
        return _go_float(value, "%.4g")
    if value == 0:
        return "0s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        value = abs(value)
        whole = int(value)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{value:.4g}s"
    return _with_small_prefix(value) + "s"
