"""The Prometheus text format (0.0.4) and OpenMetrics 1.0, written from cell copies.

prometheus_client's encoder wants a family object per metric and a sample tuple with
a label dict per line, then formats each line label by label: about three quarters
of a large scrape went there. This writer formats what
:meth:`~telemetry.aggregation.aggregator.Aggregator.collect_copies` copied, and
nothing else:

* every family's lines are one ``str.format`` template per (metric, format, samples
  asked for), built once: the sample names, the ``le`` labels, the braces and the
  newlines are literal text in it, and a histogram's ``_count`` is the same argument
  as its ``+Inf`` bucket, so the two cannot disagree;
* every label set's label part (``{a="x",b="y"``, escaped) is rendered the first
  time it is written and cached by its label values (it is a pure function of them);
* a scrape then formats the numbers of each series with one template call: no
  object per line, only the series' own text.

Numbers are written as both formats require: bucket counts and ``_count`` as
integers, other values as Python's shortest round-trip repr, with ``+Inf``,
``-Inf`` and ``NaN`` spelled out; ``le`` values as prometheus_client writes them
(Go's ``%g``: ``1.048576e+06``). OpenMetrics adds ``# UNIT``, the ``_created``
sample of every counter and histogram series, the histogram exemplars and
``# EOF``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from itertools import accumulate

from telemetry.aggregation.aggregator import CellCopy
from telemetry.catalogue import Kind, MetricSpec

#: The samples each kind has: the suffix of each sample name after the family name.
_SUFFIXES = {
    (Kind.COUNTER, False): ("_total",),
    (Kind.COUNTER, True): ("_total", "_created"),
    (Kind.GAUGE, False): ("",),
    (Kind.GAUGE, True): ("",),
    (Kind.HISTOGRAM, False): ("_bucket", "_count", "_sum"),
    (Kind.HISTOGRAM, True): ("_bucket", "_count", "_sum", "_created"),
}


def go_float(value: float) -> str:
    """``value`` as prometheus_client writes ``le`` label values (Go's ``%g`` for
    large numbers), so a bucket's series is the one every other client makes."""
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def number(value: float) -> str:
    """A sample value as both formats read it: the shortest repr that round-trips, and
    ``+Inf``, ``-Inf``, ``NaN`` for the values Python spells otherwise."""
    if type(value) is float and value - value == 0.0:  # finite: the common case
        return repr(value)
    value = float(value)
    if value != value:
        return "NaN"
    if value - value != 0.0:
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def escape_label_value(value: str) -> str:
    """Backslash, double quote and newline escaped, as both formats require."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_part(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    """``{a="x",b="y"`` (labels sorted by name, as prometheus_client writes them, the
    closing brace left to the template), or "" without labels."""
    if not names:
        return ""
    pairs = sorted(zip(names, values, strict=True))
    return "{" + ",".join(f'{name}="{escape_label_value(value)}"' for name, value in pairs)


def _help_text(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


def _header(spec: MetricSpec, openmetrics: bool) -> str:
    """The HELP and TYPE lines (and UNIT in OpenMetrics), named as each format names
    a family: text names a counter with ``_total``, OpenMetrics without."""
    name = spec.prometheus_family if openmetrics else spec.prometheus_name
    lines = [f"# HELP {name} {_help_text(spec.help, openmetrics)}\n",
             f"# TYPE {name} {spec.kind.value}\n"]
    if openmetrics and spec.prometheus_unit:
        lines.append(f"# UNIT {name} {spec.prometheus_unit}\n")
    return "".join(lines)


class FamilyTemplate:
    """One metric's lines in one format, for the samples asked for.

    ``line`` takes the series' label part, then its values; a histogram's are the
    cumulative bucket counts (the last one is ``+Inf`` and the ``_count``), the sum,
    the created time and, in ``exemplar_line``, one exemplar text per bucket.
    """

    __slots__ = ("exemplar_line", "header", "kind", "line", "openmetrics", "writes_created")

    def __init__(self, spec: MetricSpec, openmetrics: bool, wanted: Collection[str]) -> None:
        self.kind = spec.kind
        self.openmetrics = openmetrics
        self.header = _header(spec, openmetrics)
        self.writes_created = "_created" in wanted
        name = spec.prometheus_family
        close = "}} " if spec.labels else " "
        if spec.kind is Kind.HISTOGRAM:
            self.line = _histogram_template(spec, wanted, close, exemplars=False)
            self.exemplar_line = (_histogram_template(spec, wanted, close, exemplars=True)
                                  if openmetrics else self.line)
        else:
            parts = [(suffix, index) for suffix, index in (("_total", 1), ("", 1),
                                                            ("_created", 2))
                     if suffix in wanted]
            self.line = "".join(f"{name}{suffix}{{0}}{close}{{{index}}}\n"
                                for suffix, index in parts)
            self.exemplar_line = self.line


def _histogram_template(spec: MetricSpec, wanted: Collection[str], close: str, *,
                        exemplars: bool) -> str:
    """Arguments: 0 the label part, 1..k the cumulative counts (k buckets with
    ``+Inf``), k+1 the sum, k+2 the created time, k+2+i bucket i's exemplar text."""
    name = spec.prometheus_family
    bounds = (*spec.buckets, math.inf)
    k = len(bounds)
    lines = []
    if "_bucket" in wanted:
        for i, bound in enumerate(bounds, start=1):
            le = go_float(bound)
            le_part = f',le="{le}"}}}} ' if spec.labels else f'{{{{le="{le}"}}}} '
            exemplar = f"{{{k + 2 + i}}}" if exemplars else ""
            lines.append(f"{name}_bucket{{0}}{le_part}{{{i}}}{exemplar}\n")
    for suffix, index in (("_count", k), ("_sum", k + 1), ("_created", k + 2)):
        if suffix in wanted:
            lines.append(f"{name}{suffix}{{0}}{close}{{{index}}}\n")
    return "".join(lines)


def _exemplar_text(kept: tuple[float, float, int, int] | None) -> str:
    """A bucket's exemplar as OpenMetrics writes it after the count (" # {...} v ts")."""
    if kept is None:
        return ""
    value, at, trace_id, span_id = kept
    return (f' # {{span_id="{span_id:016x}",trace_id="{trace_id:032x}"}} '
            f"{number(value)} {number(at)}")


class ExpositionWriter:
    """Writes collections as text or OpenMetrics; holds the templates and the cached
    label parts (shared by concurrent scrapes: each cache entry is a pure function of
    its key, so a race only renders one twice)."""

    def __init__(self) -> None:
        self._templates: dict[tuple[MetricSpec, bool, frozenset[str] | None],
                              FamilyTemplate | None] = {}
        self._labels: dict[MetricSpec, dict[tuple[str, ...], str]] = {}

    def write(self, copies: Iterable[tuple[MetricSpec, list[CellCopy]]], *,
              openmetrics: bool, names: Collection[str] | None = None) -> bytes:
        """The exposition of ``copies``; with ``names`` (the ``name[]`` query), only
        the samples whose names are in it, and only families that have one."""
        wanted_names = None if names is None else frozenset(names)
        out: list[str] = []
        for spec, rows in copies:
            template = self._template(spec, openmetrics, wanted_names)
            if template is None or (wanted_names is not None and not rows):
                continue
            out.append(template.header)
            if rows:
                self._write_rows(out, template, spec, rows)
        if openmetrics:
            out.append("# EOF\n")
        return "".join(out).encode()

    def _template(self, spec: MetricSpec, openmetrics: bool,
                  names: frozenset[str] | None) -> FamilyTemplate | None:
        key = (spec, openmetrics, names)
        found = self._templates.get(key, False)
        if found is False:
            suffixes = _SUFFIXES[spec.kind, openmetrics]
            base = spec.prometheus_family
            wanted = [s for s in suffixes if names is None or base + s in names]
            found = FamilyTemplate(spec, openmetrics, wanted) if wanted else None
            if names is None or len(self._templates) < 4096:  # a client's odd queries
                self._templates[key] = found
        return found

    def _write_rows(self, out: list[str], template: FamilyTemplate, spec: MetricSpec,
                    rows: list[CellCopy]) -> None:
        cache = self._labels.get(spec)
        if cache is None:
            cache = self._labels[spec] = {}
        names = spec.labels
        line = template.line
        created = template.writes_created
        if template.kind is Kind.HISTOGRAM:
            exemplar_line = template.exemplar_line
            openmetrics = template.openmetrics
            for row in rows:
                labels = cache.get(row.labels)
                if labels is None:
                    labels = cache[row.labels] = label_part(names, row.labels)
                value = row.value
                if openmetrics and row.exemplars:
                    out.append(exemplar_line.format(
                        labels, *accumulate(value[:-1]), number(value[-1]),
                        number(row.created), *map(_exemplar_text, row.exemplars)))
                else:
                    out.append(line.format(labels, *accumulate(value[:-1]), number(value[-1]),
                                           number(row.created) if created else ""))
        else:
            for row in rows:
                labels = cache.get(row.labels)
                if labels is None:
                    labels = cache[row.labels] = label_part(names, row.labels)
                out.append(line.format(labels, number(row.value),
                                       number(row.created) if created else ""))
        if len(cache) > 2 * len(rows) + 64:  # label sets gone since: keep the live ones
            self._labels[spec] = {row.labels: cache[row.labels] for row in rows}
