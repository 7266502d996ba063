"""Parser of rotel's detailed debug log into span and metric-point dictionaries."""

from __future__ import annotations

import re
from typing import Any

# --------------------------------------------------------------------------- rotel

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?\s+(?:TRACE|DEBUG|INFO|WARN|ERROR)\b"
)
_TYPED = re.compile(r"^([A-Za-z]+)\((.*)\)\Z", re.S)
_ITEM_START = re.compile(r"([A-Za-z]+)\(")
_INT = re.compile(r"^[-+]?\d+$")


def _number(text: str) -> int | float:
    text = text.strip()
    return int(text) if _INT.match(text) else float(text)


def _split_slice_items(inner: str) -> list[str]:
    """Split ``Str(a), Int(1), Slice(...)`` into its raw items.

    A string item ends at the first ")" followed by ", Type(" or by the end; other items
    end at their matching parenthesis. Strings containing ``), Int(`` stay ambiguous.
    """
    items: list[str] = []
    pos = 0
    while pos < len(inner):
        match = _ITEM_START.match(inner, pos)
        if not match:
            items.append(inner[pos:])
            break
        kind = match.group(1)
        start = match.end()
        end = -1
        if kind == "Str":
            search = start
            while True:
                close = inner.find(")", search)
                if close < 0:
                    break
                rest = inner[close + 1 :]
                if not rest or re.match(r", [A-Za-z]+\(", rest):
                    end = close
                    break
                search = close + 1
        else:
            depth = 1
            i = start
            while i < len(inner):
                if inner[i] == "(":
                    depth += 1
                elif inner[i] == ")":
                    depth -= 1
                    if depth == 0:
                        end = i
                        break
                i += 1
        if end < 0:
            items.append(inner[pos:])
            break
        items.append(inner[pos : end + 1])
        pos = end + 1
        if inner.startswith(", ", pos):
            pos += 2
    return items


def _parse_any_value(raw: str) -> Any:
    """Turn one printed attribute value into Python.

    ``Str(x)``, ``Int(3)``, ``Double(1.5)``, ``Bool(true)`` and ``Slice(..)`` become str,
    int, float, bool and list; other kinds (Bytes, Map) come back as their printed text.
    """
    match = _TYPED.match(raw)
    if not match:
        return raw
    kind, inner = match.groups()
    try:
        if kind == "Str":
            return inner
        if kind == "Int":
            return int(inner)
        if kind == "Double":
            return float(inner)
        if kind == "Bool":
            return inner == "true"
        if kind in ("Slice", "Array"):
            return [_parse_any_value(item) for item in _split_slice_items(inner)] if inner else []
    except ValueError:
        return raw
    return inner  # Bytes, Map, ...: the printed form


_SPAN_FIELD = re.compile(r"^ {4}(?P<key>[A-Za-z][A-Za-z ]*?)\s*: ?(?P<value>.*)$")
_ARROW = re.compile(r"^(?P<indent> +)-> (?P<key>.+?):(?: (?P<value>.*))?$")
_HEADER = re.compile(
    r"^(?P<what>ResourceSpans|ResourceMetrics|ScopeSpans|ScopeMetrics|Span|SpanEvent|SpanLink|"
    r"Metric|NumberDataPoints|HistogramDataPoints|ExponentialHistogramDataPoints|"
    r"SummaryDataPoints|Exemplar) #\d+$"
)
_POINT_FIELD = re.compile(
    r"^(?P<key>StartTimestamp|Timestamp|Value|Count|Sum|Min|Max|Flags): (?P<value>.*)$"
)
_BOUND = re.compile(r"^ExplicitBounds #\d+: (?P<value>.*)$")
_BUCKET = re.compile(r"^Buckets #\d+, Count: (?P<value>\d+)$")
_EXP_BUCKET = re.compile(
    r"^Bucket [\[(](?P<lo>[^,]+), (?P<hi>[^\])]+)[\])], Count: (?P<count>\d+)$"
)
_QUANTILE = re.compile(r"^QuantileValue #\d+: Quantile (?P<q>[^,]+), Value (?P<v>.*)$")

_POINT_TYPES = {
    "NumberDataPoints": "number",
    "HistogramDataPoints": "histogram",
    "ExponentialHistogramDataPoints": "exponential_histogram",
    "SummaryDataPoints": "summary",
}


def _strip_prefix(value: str, prefix: str) -> str:
    return value[len(prefix) :] if value.startswith(prefix) else value


class _RotelParser:
    """Line-by-line state machine over rotel's ``--debug-log-verbosity detailed`` output.

    rotel prints each received export request in one write, in the layout of the
    OpenTelemetry Collector's debug exporter. Attribute values are printed unescaped, so a
    string containing newlines spans several lines: a value is continued while it lacks its
    closing ")" and, for strings, by any following line that is not part of the layout.
    """

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.points: list[dict[str, Any]] = []
        self.unparsed: list[str] = []
        self.resource: dict[str, Any] = {}
        self.scope = ("", "")
        self.scope_attributes: dict[str, Any] = {}
        self.attr_target: dict[str, Any] | None = None
        self.section = ""  # what the "->" lines currently describe
        self.span: dict[str, Any] | None = None
        self.sub: dict[str, Any] | None = None  # current event / link / exemplar
        self.metric: dict[str, Any] = {}
        self.point: dict[str, Any] | None = None
        self.pending: tuple[dict[str, Any], str, str] | None = None  # target, key, raw text

    # -- attribute values that may span lines
    def _set_pending(self, target: dict[str, Any], key: str, raw: str) -> None:
        target[key] = _parse_any_value(raw)
        # Only typed values ("Str(...", "Int(...") can continue on later lines.
        self.pending = (target, key, raw) if _ITEM_START.match(raw) else None

    def _extend_pending(self, line: str) -> None:
        assert self.pending is not None
        target, key, raw = self.pending
        self._set_pending(target, key, raw + "\n" + line)

    def feed(self, line: str) -> None:
        if self.pending is not None and not self.pending[2].endswith(")"):
            self._extend_pending(line)
            return
        if _LOG_LINE.match(line):
            self.pending = None
            return
        try:
            structural = self._structural(line)
        except ValueError:  # a layout-like line with garbage in it: not layout after all
            structural = False
        if not structural:
            if self.pending is not None and self.pending[2].startswith("Str("):
                self._extend_pending(line)
            elif line.strip():
                self.unparsed.append(line)
            return
        if not _ARROW.match(line) or self.section not in _ATTRIBUTE_SECTIONS:
            self.pending = None

    def _structural(self, line: str) -> bool:
        header = _HEADER.match(line)
        if header:
            self.pending = None
            self._header(header.group("what"))
            return True
        if line.startswith("Resource SchemaURL:") or line.startswith(
            ("ScopeSpans SchemaURL:", "ScopeMetrics SchemaURL:")
        ):
            return True
        if line == "Resource attributes:":
            self._attributes("resource", self.resource)
            return True
        if line == "InstrumentationScope attributes:":
            self._attributes("scope_attributes", self.scope_attributes)
            return True
        if line.startswith("InstrumentationScope "):
            name, _, version = line[len("InstrumentationScope ") :].rpartition(" ")
            self.scope = (name, version)
            self.scope_attributes = {}
            self.section = "scope"
            return True
        if self.span is not None and self.section in _SPAN_SECTIONS and self._span_line(line):
            return True
        if line == "Descriptor:":
            self.section = "descriptor"
            return True
        if line == "Data point attributes:" and self.point is not None:
            self._attributes("point_attributes", self.point["attributes"])
            return True
        if line == "Exemplars:":
            self.section = "exemplars"
            return True
        if self.point is not None and not line.startswith(" ") and self._point_line(line):
            return True
        if line.strip() == "-> Attributes::" and self.sub is not None:
            self._attributes(self.section + "_attributes", self.sub["attributes"])
            return True
        arrow = _ARROW.match(line)
        if arrow:
            return self._arrow(arrow.group("key"), arrow.group("value") or "")
        return False

    def _attributes(self, section: str, target: dict[str, Any]) -> None:
        self.section = section
        self.attr_target = target
        self.pending = None

    def _header(self, what: str) -> None:
        if what in ("ResourceSpans", "ResourceMetrics"):
            self.resource = {}
            self.scope = ("", "")
            self.scope_attributes = {}
            self.span = self.sub = self.point = None
            self.metric = {}
            self.section = "resource_header"
        elif what in ("ScopeSpans", "ScopeMetrics"):
            self.scope = ("", "")
            self.scope_attributes = {}
            self.span = self.sub = self.point = None
            self.section = "scope_header"
        elif what == "Span":
            self.span = {
                "trace_id": "",
                "span_id": "",
                "parent_span_id": None,
                "name": "",
                "kind": "",
                "status_code": "",
                "status_message": "",
                "start_time": None,
                "end_time": None,
                "attributes": {},
                "events": [],
                "links": [],
                "resource": dict(self.resource),
                "scope": self.scope[0],
                "scope_version": self.scope[1],
            }
            self.spans.append(self.span)
            self.sub = None
            self.section = "span"
        elif what == "SpanEvent" and self.span is not None:
            self.sub = {"name": "", "time": None, "attributes": {}, "dropped_attributes_count": 0}
            self.span["events"].append(self.sub)
            self.section = "event"
        elif what == "SpanLink" and self.span is not None:
            self.sub = {
                "trace_id": "",
                "span_id": "",
                "trace_state": "",
                "attributes": {},
                "dropped_attributes_count": 0,
            }
            self.span["links"].append(self.sub)
            self.section = "link"
        elif what == "Metric":
            self.metric = {
                "name": "",
                "description": "",
                "unit": "",
                "type": "",
                "monotonic": None,
                "temporality": None,
            }
            self.point = None
            self.section = "metric"
        elif what in _POINT_TYPES:
            kind = _POINT_TYPES[what]
            point: dict[str, Any] = {
                **self.metric,
                "point_kind": kind,
                "attributes": {},
                "start_time": None,
                "time": None,
                "exemplars": [],
                "resource": dict(self.resource),
                "scope": self.scope[0],
                "scope_version": self.scope[1],
            }
            if kind == "number":
                point["value"] = None
            else:
                point.update(count=None, sum=None, min=None, max=None)
            if kind == "histogram":
                point.update(bounds=[], bucket_counts=[])
            elif kind == "exponential_histogram":
                point["buckets"] = []
            elif kind == "summary":
                point["quantiles"] = []
            self.point = point
            self.points.append(point)
            self.sub = None
            self.section = "point"
        elif what == "Exemplar" and self.point is not None:
            self.sub = {
                "trace_id": "",
                "span_id": "",
                "time": None,
                "value": None,
                "attributes": {},
            }
            self.point["exemplars"].append(self.sub)
            self.section = "exemplar"

    def _span_line(self, line: str) -> bool:
        assert self.span is not None
        if line.startswith("Start time: "):
            self.span["start_time"] = int(line.split(": ", 1)[1])
            return True
        if line.startswith("End time: "):
            self.span["end_time"] = int(line.split(": ", 1)[1])
            return True
        if line == "Attributes:":
            self._attributes("span_attributes", self.span["attributes"])
            return True
        if line == "Events:":
            self.section = "events"
            return True
        if line == "Links:":
            self.section = "links"
            return True
        if self.section == "span" and not line.lstrip().startswith("->"):
            field_match = _SPAN_FIELD.match(line)
            if field_match:
                key, value = field_match.group("key"), field_match.group("value")
                if key == "Trace ID":
                    self.span["trace_id"] = value
                elif key == "Parent ID":
                    self.span["parent_span_id"] = value or None
                elif key == "ID":
                    self.span["span_id"] = value
                elif key == "Name":
                    self.span["name"] = value
                elif key == "Kind":
                    self.span["kind"] = _strip_prefix(value, "SPAN_KIND_")
                elif key == "Status code":
                    self.span["status_code"] = _strip_prefix(value, "STATUS_CODE_")
                elif key == "Status message":
                    self.span["status_message"] = value
                else:
                    self.span[key.lower().replace(" ", "_")] = value
                return True
        return False

    def _point_line(self, line: str) -> bool:
        assert self.point is not None
        point = self.point
        match = _POINT_FIELD.match(line)
        if match:
            key, value = match.group("key"), match.group("value")
            if key == "StartTimestamp":
                point["start_time"] = int(value)
            elif key == "Timestamp":
                point["time"] = int(value)
            elif key == "Flags":
                point["flags"] = value
            else:
                point[key.lower()] = _number(value)
            self.section = "point"
            return True
        match = _BOUND.match(line)
        if match:
            point.setdefault("bounds", []).append(float(match.group("value")))
            return True
        match = _BUCKET.match(line)
        if match:
            point.setdefault("bucket_counts", []).append(int(match.group("value")))
            return True
        match = _EXP_BUCKET.match(line)
        if match:
            point.setdefault("buckets", []).append(
                (float(match.group("lo")), float(match.group("hi")), int(match.group("count")))
            )
            return True
        match = _QUANTILE.match(line)
        if match:
            point.setdefault("quantiles", []).append(
                (float(match.group("q")), _number(match.group("v")))
            )
            return True
        return False

    def _arrow(self, key: str, value: str) -> bool:
        section = self.section
        if section in _ATTRIBUTE_SECTIONS and self.attr_target is not None:
            self._set_pending(self.attr_target, key, value)
            return True
        if section == "metric" or section == "descriptor":
            metric = self.metric
            if key == "Name":
                metric["name"] = value
            elif key == "Description":
                metric["description"] = value
            elif key == "Unit":
                metric["unit"] = value
            elif key == "DataType":
                metric["type"] = value
            elif key == "IsMonotonic":
                metric["monotonic"] = value == "true"
            elif key == "AggregationTemporality":
                metric["temporality"] = _strip_prefix(value, "AGGREGATION_TEMPORALITY_")
            else:
                metric[key.lower()] = value
            return True
        if self.sub is not None and section in ("event", "link", "exemplar"):
            sub = self.sub
            if key == "Name":
                sub["name"] = value
            elif key == "Timestamp":
                sub["time"] = int(value) if value else None
            elif key == "DroppedAttributesCount":
                sub["dropped_attributes_count"] = int(value or 0)
            elif key == "Trace ID":
                sub["trace_id"] = value
            elif key in ("ID", "Span ID"):
                sub["span_id"] = value
            elif key == "TraceState":
                sub["trace_state"] = value
            elif key == "Value":
                sub["value"] = _number(value)
            else:
                sub[key.lower().replace(" ", "_")] = value
            return True
        return False


_SPAN_SECTIONS = {
    "span",
    "span_attributes",
    "events",
    "links",
    "event",
    "event_attributes",
    "link",
    "link_attributes",
}

_ATTRIBUTE_SECTIONS = {
    "resource",
    "scope_attributes",
    "span_attributes",
    "event_attributes",
    "link_attributes",
    "exemplar_attributes",
    "point_attributes",
}


def parse_rotel_output(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse rotel's detailed debug log into ``(spans, metric_points)``, in arrival order.

    A span is a dict with ``trace_id``, ``span_id``, ``parent_span_id`` (None for a
    root), ``name``, ``kind`` ("INTERNAL", "SERVER", ...), ``status_code`` ("UNSET",
    "OK", "ERROR"), ``status_message``, ``start_time``/``end_time`` (Unix ns),
    ``attributes``, ``events`` (each ``name``, ``time``, ``attributes``), ``links``,
    ``resource`` (resource attributes), ``scope`` and ``scope_version``.

    A metric point is a dict with the metric's ``name``, ``description``, ``unit``,
    ``type`` ("Sum", "Gauge", "Histogram", "ExponentialHistogram", "Summary"),
    ``monotonic`` and ``temporality`` ("CUMULATIVE"/"DELTA"/None), plus the point's
    ``attributes``, ``start_time``, ``time``, ``exemplars``, ``resource``, ``scope``, and
    ``value`` (sums and gauges) or ``count``/``sum``/``min``/``max`` with ``bounds`` and
    ``bucket_counts`` (histograms; one more count than bounds) or ``buckets`` as
    ``(lower, upper, count)`` triples (exponential histograms).
    """
    parser = _RotelParser()
    lines = _ANSI.sub("", text).split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last block
    for line in lines:
        parser.feed(line)
    return parser.spans, parser.points
