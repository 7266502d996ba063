"""OTLP protobuf encoding of the tracer's spans, written straight to bytes.

The OpenTelemetry exporters encode a batch by building one protobuf message object
per span, attribute and value through a chain of helper functions (and hashing the
resource, a JSON dump, for every span): for the spans
:class:`telemetry.tracing.SignalTracer` makes, about 23 µs per span on the batch
thread, more than making the span costs. Those spans are simple and alike (a
handful of string and number attributes, few events, no links), so
:class:`SpanEncoder` writes the ``ExportTraceServiceRequest`` wire format directly,
with the encoded resource and scope, span names and recurring attribute pairs
(agent names, decision types) cached: about 5 µs per span. The bytes are those the
SDK's ``encode_spans(...).SerializePartialToString()`` gives (the tests compare
them); a batch holding anything it does not handle (links, schema URLs, values
other than str/bool/int/float or sequences of them) raises :class:`Unsupported`
and is encoded by the SDK instead.

Used by :mod:`exporters.otlp_span_http` and :mod:`exporters.otlp_span_grpc`, on the
batch processor's thread.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

#: Span.kind (field 6) as encoded, by SDK kind.
_KINDS = {kind: b"\x30" + bytes((value,)) for kind, value in (
    (SpanKind.INTERNAL, 1), (SpanKind.SERVER, 2), (SpanKind.CLIENT, 3), (SpanKind.PRODUCER, 4),
    (SpanKind.CONSUMER, 5))}
#: Span.flags: the "is remote" bit is known (0x100), and set (0x200).
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", 0x100)
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", 0x300)
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
#: Start and end times (fields 7 and 8, fixed64) in one call.
_TIMES = struct.Struct("<BQBQ").pack
#: Entries of each encoding cache; a full cache is emptied and refilled.
_CACHE_SIZE = 2048


class Unsupported(Exception):
    """A span this encoder does not handle: the caller falls back to the SDK."""


_SMALL = [bytes((n,)) for n in range(128)]


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    size = len(payload)
    return tag + (_SMALL[size] if size < 0x80 else _varint(size)) + payload


def _any_value(value: Any) -> bytes:
    """An ``AnyValue`` message."""
    kind = type(value)
    if kind is str:
        return _field(b"\x0a", value.encode())
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not -(1 << 63) <= value < (1 << 63):
            raise Unsupported("int out of range")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if kind is float:
        return b"\x21" + _DOUBLE(value)
    if kind is tuple or kind is list:
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    raise Unsupported(f"attribute value of type {kind.__name__}")


class SpanEncoder:
    """Encodes batches of spans; keeps small caches, so one per exporter.

    Not thread-safe: the batch processor calls its exporter from one thread at a time.
    """

    def __init__(self) -> None:
        self._pairs: dict[tuple[bytes, str, str], bytes] = {}
        self._names: dict[str, bytes] = {}
        self._headers: dict[tuple[int, int], tuple[Any, Any, bytes, bytes]] = {}

    def encode_request(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialized ``ExportTraceServiceRequest`` for ``spans``: grouped by
        resource, then scope, in order of appearance, as the SDK groups them.

        Raises :class:`Unsupported` for a batch it cannot encode.
        """
        #: resource -> (encoded resource, scope -> (encoded scope, encoded spans))
        groups: dict[Any, tuple[bytes, dict[Any, tuple[bytes, list[bytes]]]]] = {}
        resource = scope = current = None
        for span in spans:
            if span.resource is not resource or span.instrumentation_scope is not scope:
                # a change of group (once per batch here): equal objects share one
                resource, scope = span.resource, span.instrumentation_scope
                resource_bytes, scope_bytes = self._header(resource, scope)
                scopes = groups.setdefault(resource, (resource_bytes, {}))[1]
                current = scopes.setdefault(scope, (scope_bytes, []))[1]
            current.append(self._span(span))  # type: ignore[union-attr]
        return b"".join(
            _field(b"\x0a", resource_bytes + b"".join(
                _field(b"\x12", scope_bytes + b"".join(encoded))
                for scope_bytes, encoded in scopes.values()))
            for resource_bytes, scopes in groups.values())

    # -- parts -----------------------------------------------------------------------

    def _header(self, resource: Any, scope: Any) -> tuple[bytes, bytes]:
        """The encoded resource and scope (ResourceSpans.resource, ScopeSpans.scope),
        cached while the same objects are in use."""
        key = (id(resource), id(scope))
        cached = self._headers.get(key)
        if cached is not None and cached[0] is resource and cached[1] is scope:
            return cached[2], cached[3]
        if resource.schema_url or (scope is not None and scope.schema_url):
            raise Unsupported("schema URL")
        resource_bytes = _field(b"\x0a", self._attributes(resource.attributes, b"\x0a"))
        if scope is None:
            scope_bytes = b"\x0a\x00"
        else:
            body = _field(b"\x0a", scope.name.encode()) if scope.name else b""
            if scope.version:
                body += _field(b"\x12", scope.version.encode())
            body += self._attributes(scope.attributes, b"\x1a")
            scope_bytes = _field(b"\x0a", body)
        if len(self._headers) >= 16:
            self._headers.clear()
        self._headers[key] = (resource, scope, resource_bytes, scope_bytes)
        return resource_bytes, scope_bytes

    def _attributes(self, attributes: Any, tag: bytes) -> bytes:
        """Repeated ``KeyValue`` fields under ``tag``; string pairs come from a cache."""
        if not attributes:
            return b""
        pairs = self._pairs
        out = []
        for key, value in attributes.items():
            if type(value) is str:
                field = pairs.get((tag, key, value))
                if field is None:
                    if len(pairs) >= _CACHE_SIZE:
                        pairs.clear()
                    field = pairs[tag, key, value] = _field(tag, _field(
                        b"\x0a", key.encode()) + _field(b"\x12", _field(b"\x0a", value.encode())))
            else:
                field = _field(tag, _field(b"\x0a", key.encode())
                               + _field(b"\x12", _any_value(value)))
            out.append(field)
        return b"".join(out)

    def _span(self, span: ReadableSpan) -> bytes:
        if span.links:
            raise Unsupported("links")
        context, parent, name = span.context, span.parent, span.name
        out = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"),
               b"\x12\x08", context.span_id.to_bytes(8, "big")]
        if context.trace_state:
            out.append(_field(b"\x1a", ",".join(
                f"{k}={v}" for k, v in context.trace_state.items()).encode()))
        if parent is not None:
            out.append(b"\x22\x08")
            out.append(parent.span_id.to_bytes(8, "big"))
        encoded_name = self._names.get(name)
        if encoded_name is None:
            if len(self._names) >= _CACHE_SIZE:
                self._names.clear()
            encoded_name = self._names[name] = _field(b"\x2a", name.encode()) if name else b""
        out.append(encoded_name)
        out.append(_KINDS[span.kind])
        start, end = span.start_time, span.end_time
        if start and end:
            out.append(_TIMES(0x39, start, 0x41, end))
        else:
            out.append(b"\x39" + _FIXED64(start) if start else b"")
            out.append(b"\x41" + _FIXED64(end) if end else b"")
        out.append(self._attributes(span.attributes, b"\x4a"))
        dropped = span.dropped_attributes
        if dropped:
            out.append(b"\x50" + _varint(dropped))
        events = span.events
        if events:
            for event in events:
                out.append(_field(b"\x5a", self._event(event)))
            dropped = span.dropped_events
            if dropped:
                out.append(b"\x60" + _varint(dropped))
        status = span.status
        if status.description or status.status_code.value:
            body = _field(b"\x12", status.description.encode()) if status.description else b""
            if status.status_code.value:
                body += b"\x18" + _varint(status.status_code.value)
            out.append(_field(b"\x7a", body))
        else:
            out.append(b"\x7a\x00")
        out.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        return _field(b"\x12", b"".join(out))

    def _event(self, event: Any) -> bytes:
        body = b""
        if event.timestamp:
            body += b"\x09" + _FIXED64(event.timestamp)
        if event.name:
            body += _field(b"\x12", event.name.encode())
        body += self._attributes(event.attributes, b"\x1a")
        if event.dropped_attributes:
            body += b"\x20" + _varint(event.dropped_attributes)
        return body
