"""OTLP protobuf encoding of the aggregator's series, written straight to bytes.

Going through the SDK costs, every export interval, one ``Metric`` and one data point
object per series (:func:`exporters.otlp.metrics.to_metrics_data`), then one protobuf
message per metric, data point, attribute and value, built by the SDK's encoder:
about 2 ms for the reference workflow's ~180 series, on the export thread, ten
seconds after ten seconds. The series barely change between exports, so
:class:`MetricsEncoder` writes the ``ExportMetricsServiceRequest`` wire format
directly, with what does not change cached:

* the resource and the scope, encoded once by the SDK's own encoder;
* each metric's name, description and unit, and a histogram's bounds;
* each series' attributes (its label pairs), by label values;

so an export packs, per series, its times and value (or count, sum and bucket
counts) with one ``struct`` call, and joins the request once.

The mapping is :mod:`exporters.otlp.metrics`' (counter: monotonic sum; gauge:
gauge; histogram: explicit-bucket histogram; cumulative, or delta when the encoder
is made with ``delta``; integer sums as ints, other values as doubles; start times
from :class:`exporters.otlp.points.ExportSeries`). It reads the series' columns,
so an export makes no object per series. The bytes are those of the SDK's
``encode_metrics(to_metrics_data(...)).SerializeToString()`` for the same series;
``tests/unit/exporters/otlp/test_metric_encoding.py`` compares them.

Used by :mod:`exporters.otlp.metrics` on the metric export thread; imports the
SDK's encoder once, for the resource and scope.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from itertools import repeat
from typing import Any

from exporters.otlp.fastpath.wire import field as _field
from exporters.otlp.fastpath.wire import head as _head
from exporters.otlp.fastpath.wire import pair as _pair
from exporters.otlp.points import ExportSeries, is_integer, number
from telemetry.catalogue import Kind, MetricSpec

#: Sum and Histogram: aggregation_temporality (field 2) = CUMULATIVE, or DELTA.
_CUMULATIVE = b"\x10\x02"
_DELTA = b"\x10\x01"
#: Sum.is_monotonic (field 3) = true.
_MONOTONIC = b"\x18\x01"
#: Metric fields holding the data: gauge (5), sum (7), histogram (9).
_DATA_TAG = {Kind.GAUGE: b"\x2a", Kind.COUNTER: b"\x3a", Kind.HISTOGRAM: b"\x4a"}
#: Data point attributes: NumberDataPoint field 7, HistogramDataPoint field 9.
_ATTRIBUTES_TAG = {Kind.GAUGE: b"\x3a", Kind.COUNTER: b"\x3a", Kind.HISTOGRAM: b"\x4a"}
#: NumberDataPoint: start (2, fixed64), time (3, fixed64), as_double (4, double).
_NUMBER = struct.Struct("<BQBQBd").pack
#: NumberDataPoint: start, time, as_int (6, sfixed64).
_INT_NUMBER = struct.Struct("<BQBQBq").pack
#: NumberDataPoint without a start time (gauges): time, as_double.
_GAUGE = struct.Struct("<BQBd").pack
#: HistogramDataPoint: start (2), time (3), count (4, fixed64), sum (5, double).
_HISTOGRAM = struct.Struct("<BQBQBQBd").pack
_FIXED64 = struct.Struct("<BQ").pack
_INT = struct.Struct("<Bq").pack
_DOUBLE = struct.Struct("<Bd").pack
#: Label sets cached per metric; a full cache is emptied and refilled.
_CACHE_SIZE = 4096


class _MetricCodec:
    """What is fixed for one catalogue entry: its header, its data field's tag and
    tail, its attribute fields by label values, a histogram's bounds."""

    __slots__ = ("attributes", "bounds", "counts", "data_tag", "header", "integer", "kind",
                 "labels", "spec", "tag", "tail")

    def __init__(self, spec: MetricSpec, delta: bool = False) -> None:
        self.spec, self.kind = spec, spec.kind
        self.integer = is_integer(spec)
        self.labels = spec.otlp_attributes  # a convention's names where one is declared
        self.header = b"".join((
            _field(b"\x0a", spec.otlp_name.encode()),
            _field(b"\x12", spec.help.encode()) if spec.help else b"",
            _field(b"\x1a", spec.unit.encode()) if spec.unit else b""))
        self.data_tag = _DATA_TAG[spec.kind]
        temporality = _DELTA if delta else _CUMULATIVE
        self.tail = {Kind.COUNTER: temporality + _MONOTONIC, Kind.GAUGE: b"",
                     Kind.HISTOGRAM: temporality}[spec.kind]
        self.tag = _ATTRIBUTES_TAG[spec.kind]
        self.attributes: dict[tuple[str, ...], bytes] = {}
        bounds = tuple(float(bound) for bound in spec.buckets)
        self.bounds = (_field(b"\x3a", struct.pack(f"<{len(bounds)}d", *bounds))
                       if bounds else b"")
        #: bucket count -> (the packed field's head, its Struct's pack)
        self.counts: dict[int, tuple[bytes, Any]] = {}

    def attributes_of(self, labels: tuple[str, ...]) -> bytes:
        encoded = self.attributes.get(labels)
        if encoded is None:
            if len(self.attributes) >= _CACHE_SIZE:
                self.attributes.clear()
            encoded = self.attributes[labels] = b"".join(
                _pair(self.tag, key, value)
                for key, value in (*zip(self.labels, labels, strict=False),
                                   *self.spec.otlp_constant_attributes))
        return encoded

    def bucket_counts(self, counts: tuple[int, ...] | list[int]) -> bytes:
        size = len(counts)
        if not size:
            return b""
        packer = self.counts.get(size)
        if packer is None:
            packer = self.counts[size] = (_head(b"\x32", 8 * size),
                                          struct.Struct(f"<{size}Q").pack)
        return packer[0] + packer[1](*counts)


class MetricsEncoder:
    """Encodes one export request per call; keeps small caches, so one per exporter.

    ``resource_bytes`` and ``scope_bytes`` are the encoded ``Resource`` and
    ``InstrumentationScope`` messages (:func:`sdk_header` gives them), with the
    schema URLs of the resource and the scope; ``delta``: sums and histograms are
    marked delta (the series hold the changes, :mod:`exporters.otlp.points`).
    Not thread-safe: the exporter serializes its exports.
    """

    def __init__(self, resource_bytes: bytes, scope_bytes: bytes,
                 resource_schema_url: str = "", scope_schema_url: str = "",
                 delta: bool = False) -> None:
        self._delta = delta
        self._resource = _field(b"\x0a", resource_bytes)
        self._scope = _field(b"\x0a", scope_bytes)
        self._scope_tail = (_field(b"\x1a", scope_schema_url.encode())
                            if scope_schema_url else b"")
        self._resource_tail = (_field(b"\x1a", resource_schema_url.encode())
                               if resource_schema_url else b"")
        self._codecs: dict[MetricSpec, _MetricCodec] = {}

    def encode(self, series: Iterable[ExportSeries], now_ns: int) -> tuple[bytes, int]:
        """The serialized ``ExportMetricsServiceRequest`` and its number of data points."""
        metrics: list[bytes] = []
        points = 0
        for one in series:
            if not one.labels:
                continue
            codec = self._codecs.get(one.spec)
            if codec is None:
                codec = self._codecs[one.spec] = _MetricCodec(one.spec, self._delta)
            encoded = (self._histogram_points(codec, one, now_ns)
                       if codec.kind is Kind.HISTOGRAM
                       else self._number_points(codec, one, now_ns))
            points += len(encoded)
            data = b"".join(encoded) + codec.tail
            metrics.append(_field(b"\x12", codec.header + _head(codec.data_tag, len(data))
                                  + data))
        scope = self._scope + b"".join(metrics) + self._scope_tail
        resource = self._resource + _head(b"\x12", len(scope)) + scope + self._resource_tail
        return _head(b"\x0a", len(resource)) + resource, points

    def _number_points(self, codec: _MetricCodec, series: ExportSeries,
                       now_ns: int) -> list[bytes]:
        attributes_of = codec.attributes_of
        out = []
        integer = codec.integer
        starts = repeat(0) if codec.kind is Kind.GAUGE else series.starts
        for labels, raw, start in zip(series.labels, series.values, starts, strict=False):
            value = number(codec.spec, raw) if integer else float(raw)
            if type(value) is int:
                if start and now_ns:
                    body = _INT_NUMBER(0x11, start, 0x19, now_ns, 0x31, value)
                else:
                    body = b"".join(_FIXED64(tag, n) for tag, n in ((0x11, start),
                                                                    (0x19, now_ns)) if n)
                    body += _INT(0x31, value)  # a oneof member: written even when 0
                body += attributes_of(labels)
                out.append(_head(b"\x0a", len(body)) + body)
                continue
            if start and now_ns:
                body = _NUMBER(0x11, start, 0x19, now_ns, 0x21, value)
            elif now_ns:
                body = _GAUGE(0x19, now_ns, 0x21, value)
            else:
                body = (_FIXED64(0x11, start) if start else b"") + _DOUBLE(0x21, value)
            body += attributes_of(labels)
            out.append(_head(b"\x0a", len(body)) + body)
        return out

    def _histogram_points(self, codec: _MetricCodec, series: ExportSeries,
                          now_ns: int) -> list[bytes]:
        attributes_of, bounds = codec.attributes_of, codec.bounds
        out = []
        for labels, value, start, extremes, exemplars in zip(
                series.labels, series.values, series.starts,
                series.extremes or repeat(None), series.exemplars or repeat(None),
                strict=False):  # the optional columns may be repeat(None)
            counts = value[:-1]
            count, total = sum(counts), float(value[-1])
            if start and now_ns and count:
                body = _HISTOGRAM(0x11, start, 0x19, now_ns, 0x21, count, 0x29, total)
            else:
                body = b"".join(_FIXED64(tag, number) for tag, number in
                                ((0x11, start), (0x19, now_ns), (0x21, count)) if number)
                body += _DOUBLE(0x29, total)
            body = b"".join((body, codec.bucket_counts(counts), bounds,
                             _exemplars(exemplars) if exemplars else b"",
                             attributes_of(labels)))
            if extremes is not None:  # min (11), max (12)
                body += _DOUBLE(0x59, extremes[0]) + _DOUBLE(0x61, extremes[1])
            out.append(_head(b"\x0a", len(body)) + body)
        return out


def _exemplars(kept: tuple) -> bytes:
    """A point's ``exemplars`` (field 8): time, value, span id and trace id of each
    bucket's exemplar, in bucket order, as the SDK's encoder writes them."""
    out = []
    for exemplar in kept:
        if exemplar is not None:
            value, at, trace_id, span_id = exemplar
            at_ns = int(at * 1e9)  # time_unix_nano (2, left out at 0), as_double (3)
            body = b"".join((_FIXED64(0x11, at_ns) if at_ns else b"", _DOUBLE(0x19, float(value)),
                             b"\x22\x08", span_id.to_bytes(8, "big"),
                             b"\x2a\x10", trace_id.to_bytes(16, "big")))
            out.append(_head(b"\x42", len(body)) + body)
    return b"".join(out)


def sdk_header(resource: Any, scope: Any) -> tuple[bytes, bytes, str, str]:
    """The resource and scope as the SDK's encoder writes them, with their schema
    URLs: the arguments of :class:`MetricsEncoder`."""
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics

    request = encode_metrics(MetricsData([ResourceMetrics(resource, [ScopeMetrics(
        scope, [], scope.schema_url or "")], resource.schema_url or "")]))
    [resource_metrics] = request.resource_metrics
    [scope_metrics] = resource_metrics.scope_metrics
    return (resource_metrics.resource.SerializeToString(),
            scope_metrics.scope.SerializeToString(),
            resource_metrics.schema_url, scope_metrics.schema_url)
