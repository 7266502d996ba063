"""The Prometheus text format (0.0.4) and OpenMetrics 1.0, written from cell copies.

prometheus_client's encoder wants a family object per metric and a sample tuple with
a label dict per line, then formats each line label by label: about three quarters
of a large scrape went there. This writer formats what
:meth:`~telemetry.aggregation.aggregator.Aggregator.copy_series` copied (columns,
no object per cell, so a large scrape does not make the garbage collector run a full
collection), and nothing else:

* every family's lines are one ``%`` template per (metric, format, samples asked
  for), built once: the sample names, the ``le`` labels, the braces and the newlines
  are literal text in it, and a histogram's ``_count`` is written from the same
  number as its ``+Inf`` bucket, so the two cannot disagree;
* every label set's label part (``{a="x",b="y"``, escaped, UTF-8) is rendered the
  first time it is written and cached by its label values (it is a pure function of
  them);
* a scrape then formats the numbers of each series with one template call: no
  object per line, only the series' own bytes.

Everything is bytes: formatting bytes is faster than text here, and one non-ASCII
label value would make a joined ``str`` two or four bytes per character before
encoding.

Numbers are written as both formats require: bucket counts and ``_count`` as
integers, other values as Python's shortest round-trip repr, with ``+Inf``,
``-Inf`` and ``NaN`` spelled out; ``le`` values as prometheus_client writes them
(Go's ``%g``: ``1.048576e+06``). OpenMetrics adds ``# UNIT``, the ``_created``
sample of every counter and histogram series, the histogram exemplars and
``# EOF``.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Collection, Iterable
from itertools import accumulate, repeat

from telemetry.aggregation.collection import SeriesCopy
from telemetry.catalogue import Kind, MetricSpec

#: Series written between two chances for a waiting sender to run (about 1.5 ms of
#: formatting): without them a sender waits for the interpreter's forced switch
#: (``sys.getswitchinterval()``, 5 ms), as in telemetry.aggregation.collection.
YIELD_EVERY = 256

#: The samples each kind has: the suffix of each sample name after the family name.
_SUFFIXES = {
    (Kind.COUNTER, False): ("_total",),
    (Kind.COUNTER, True): ("_total", "_created"),
    (Kind.GAUGE, False): ("",),
    (Kind.GAUGE, True): ("",),
    (Kind.HISTOGRAM, False): ("_bucket", "_count", "_sum"),
    (Kind.HISTOGRAM, True): ("_bucket", "_count", "_sum", "_created"),
}
#: Samples whose values are counts, written as integers.
_COUNTS = ("_bucket", "_count")


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


def number(value: float) -> bytes:
    """A sample value as both formats read it: the shortest repr that round-trips, and
    ``+Inf``, ``-Inf``, ``NaN`` for the values Python spells otherwise."""
    if type(value) is float and value - value == 0.0:  # finite: the common case
        return b"%r" % value
    value = float(value)
    if value != value:
        return b"NaN"
    if value - value != 0.0:
        return b"+Inf" if value > 0 else b"-Inf"
    return b"%r" % value


def escape_label_value(value: str) -> str:
    """Backslash, double quote and newline escaped, as both formats require."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_part(names: tuple[str, ...], values: tuple[str, ...]) -> bytes:
    """``{a="x",b="y"`` (labels sorted by name, as prometheus_client writes them, the
    closing brace left to the template), or nothing without labels."""
    if not names:
        return b""
    pairs = sorted(zip(names, values, strict=True))
    text = "{" + ",".join(f'{name}="{escape_label_value(value)}"' for name, value in pairs)
    return text.encode()


def _help_text(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


def _header(spec: MetricSpec, openmetrics: bool) -> bytes:
    """The HELP and TYPE lines (and UNIT in OpenMetrics), named as each format names
    a family: text names a counter with ``_total``, OpenMetrics without."""
    name = spec.prometheus_family if openmetrics else spec.prometheus_name
    lines = [f"# HELP {name} {_help_text(spec.help, openmetrics)}\n",
             f"# TYPE {name} {spec.kind.value}\n"]
    if openmetrics and spec.prometheus_unit:
        lines.append(f"# UNIT {name} {spec.prometheus_unit}\n")
    return "".join(lines).encode()


class FamilyTemplate:
    """One metric's lines in one format, for the samples asked for, as a bytes ``%``
    template: every line has a slot for the series' label part and one for its value
    (``%`` cannot reuse an argument, so the label part is passed once per line;
    ``str.format`` can, but took a third longer).

    A series' values, in line order: a histogram's cumulative bucket counts (the last
    is ``+Inf``), its count (the ``+Inf`` count again), sum and, when written, created
    time; a counter's value and created time; a gauge's value. ``picks`` selects the
    values of the lines a ``name[]`` filter keeps (None: all). In OpenMetrics,
    ``exemplar_line`` has a third slot on each bucket line, for its exemplar.
    """

    __slots__ = ("buckets", "exemplar_line", "header", "kind", "line", "openmetrics",
                 "picks", "width", "writes_created")

    def __init__(self, spec: MetricSpec, openmetrics: bool, wanted: Collection[str]) -> None:
        self.kind = spec.kind
        self.openmetrics = openmetrics
        self.header = _header(spec, openmetrics)
        self.writes_created = openmetrics and "_created" in wanted
        name = spec.prometheus_family.replace("%", "%%")
        close = "} " if spec.labels else " "
        lines: list[tuple[str, str]] = []  # (line up to its value, suffix)
        if spec.kind is Kind.HISTOGRAM:
            bounds = (*spec.buckets, math.inf)
            self.buckets = len(bounds)
            opening = ',le="{}"' if spec.labels else '{{le="{}"'
            lines += [(f"{name}_bucket%s{opening.format(go_float(bound))}}} ", "_bucket")
                      for bound in bounds]
            lines += [(f"{name}{suffix}%s{close}", suffix) for suffix in ("_count", "_sum")]
        else:
            self.buckets = 0
            value = "_total" if spec.kind is Kind.COUNTER else ""
            lines.append((f"{name}{value}%s{close}", value))
        if self.writes_created:
            lines.append((f"{name}_created%s{close}", "_created"))
        kept = [index for index, (_, suffix) in enumerate(lines) if suffix in wanted]
        self.picks = None if len(kept) == len(lines) else tuple(kept)
        self.width = 2 * len(kept)

        def slot(suffix: str) -> str:
            return "%d" if suffix in _COUNTS else "%s"

        self.line = "".join(lines[index][0] + slot(lines[index][1]) + "\n"
                            for index in kept).encode()
        self.exemplar_line = "".join(
            line + slot(suffix) + ("%s\n" if suffix == "_bucket" else "\n")
            for line, suffix in lines).encode()


def _exemplar_text(kept: tuple[float, float, int, int] | None) -> bytes:
    """A bucket's exemplar as OpenMetrics writes it after the count (" # {...} v ts")."""
    if kept is None:
        return b""
    value, at, trace_id, span_id = kept
    return (b' # {span_id="%016x",trace_id="%032x"} %s %s'
            % (span_id, trace_id, number(value), number(at)))


class ExpositionWriter:
    """Writes collections as text or OpenMetrics; holds the templates and the cached
    label parts (shared by concurrent scrapes: each cache entry is a pure function of
    its key, so a race only renders one twice)."""

    def __init__(self) -> None:
        self._templates: dict[tuple[MetricSpec, bool, frozenset[str] | None],
                              FamilyTemplate | None] = {}
        self._labels: dict[MetricSpec, dict[tuple[str, ...], bytes]] = {}

    def write(self, copies: Iterable[SeriesCopy], *,
              openmetrics: bool, names: Collection[str] | None = None) -> bytes:
        """The exposition of ``copies``; with ``names`` (the ``name[]`` query), only
        the samples whose names are in it, and only families that have one, as
        client_python filters. One difference: an OpenMetrics histogram point must have
        its buckets, count and sum, so any sample of it asked for brings them."""
        wanted_names = None if names is None else frozenset(names)
        # Each series' bytes go into one growing buffer and are freed at once; getvalue()
        # hands the buffer over without a copy. A list joined at the end would hold the
        # whole exposition twice.
        buffer = io.BytesIO()
        write = buffer.write
        for series in copies:
            template = self._template(series.spec, openmetrics, wanted_names)
            if template is None or (wanted_names is not None and not series.labels):
                continue
            write(template.header)
            if series.labels:
                self._write_rows(write, template, series)
        if openmetrics:
            write(b"# EOF\n")
        return buffer.getvalue()

    def _template(self, spec: MetricSpec, openmetrics: bool,
                  names: frozenset[str] | None) -> FamilyTemplate | None:
        key = (spec, openmetrics, names)
        found = self._templates.get(key, False)
        if found is False:
            suffixes = _SUFFIXES[spec.kind, openmetrics]
            base = spec.prometheus_family
            wanted = [s for s in suffixes if names is None or base + s in names]
            if wanted and openmetrics and spec.kind is Kind.HISTOGRAM:  # a whole point
                wanted = ["_bucket", "_count", "_sum", *set(wanted) & {"_created"}]
            found = FamilyTemplate(spec, openmetrics, wanted) if wanted else None
            if names is None or len(self._templates) < 4096:  # a client's odd queries
                self._templates[key] = found
        return found

    def _write_rows(self, write: Callable[[bytes], object], template: FamilyTemplate,
                    series: SeriesCopy) -> None:
        spec = series.spec
        cache = self._labels.get(spec)
        if cache is None:
            cache = self._labels[spec] = {}
        names = spec.labels
        line, picks, width = template.line, template.picks, template.width
        created = template.writes_created
        histogram = template.kind is Kind.HISTOGRAM
        exemplars = template.openmetrics and histogram
        kept_exemplars = series.exemplars if exemplars else None
        countdown = YIELD_EVERY
        for key, value, born, kept in zip(series.labels, series.values, series.created,
                                          kept_exemplars or repeat(None),
                                          strict=False):  # repeat() is endless
            countdown -= 1
            if not countdown:
                countdown = YIELD_EVERY
                time.sleep(0)  # let a waiting sender run now
            labels = cache.get(key)
            if labels is None:
                labels = cache[key] = label_part(names, key)
            if histogram:
                values: list = [*accumulate(value[:-1])]
                values += (values[-1], number(value[-1]))
            else:
                values = [number(value)]
            if created:
                values.append(number(born))
            if kept:
                write(_with_exemplars(template, labels, values, kept))
                continue
            if picks is not None:
                values = [values[index] for index in picks]
            args = [labels] * width
            args[1::2] = values
            write(line % tuple(args))
        if len(cache) > 2 * len(series.labels) + 64:  # label sets gone: keep the live ones
            self._labels[spec] = {key: cache[key] for key in series.labels}


def _with_exemplars(template: FamilyTemplate, labels: bytes, values: list,
                    exemplars: tuple) -> bytes:
    """A histogram series' lines with each bucket's exemplar (in OpenMetrics a
    histogram is written whole, so ``values`` has every line's)."""
    buckets = template.buckets
    args: list = []
    for count, kept in zip(values[:buckets], exemplars, strict=True):
        args += (labels, count, _exemplar_text(kept))
    for value in values[buckets:]:
        args += (labels, value)
    return template.exemplar_line % tuple(args)
