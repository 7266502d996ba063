"""OTLP protobuf encoding of the tracer's finished spans, written straight to bytes.

The OpenTelemetry exporters encode a batch by building one protobuf message object
per span, attribute and value through a chain of helper functions (and hashing the
resource, a JSON dump, for every span): for the spans
:class:`telemetry.tracing.tracer.SignalTracer` makes, more than making the span costs. Those
spans are simple and alike (a handful of string and number attributes, few events,
no links, all ``INTERNAL``), so :class:`SpanEncoder` writes the
``ExportTraceServiceRequest`` wire format directly from the finished tuples of
:mod:`telemetry.tracing.spans.record`:

* the resource and scope are encoded once per origin and written once per batch;
* span names (with the span kind) and every string attribute pair (key and value:
  agent names, decision types, workflow ids) are encoded once and cached;
* ids and times are packed with ``struct``, a call each; small int attributes
  (token counts, sizes) are written after a cached head, without a call;
* the loop over a batch's spans is written out in one function, with its caches in
  local variables.

The bytes are those the SDK's ``encode_spans(...).SerializePartialToString()`` gives
for the same spans as ``ReadableSpan`` (:func:`telemetry.tracing.spans.record.to_readable`);
``tests/unit/exporters/otlp/test_span_encoding.py`` compares them. A value the encoder does not
handle (anything but str, bool, int, float or sequences of them) raises
:class:`Unsupported`, and the caller falls back to the SDK's encoder.

Used by :mod:`exporters.otlp.fastpath.span_http` and
:mod:`exporters.otlp.fastpath.span_grpc`, on the span export thread; and, in a
compiled build, on the thread that ends a span (:meth:`SpanEncoder.span_writer`):
each of the tracer's spans is written as it ends, while what it refers to is still
in that thread's cache and before it ever waits in the queue, and the export thread
only puts the written spans into a request. The bytes are the same.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from exporters.otlp.fastpath.wire import DOUBLE as _DOUBLE
from exporters.otlp.fastpath.wire import SMALL as _SMALL
from exporters.otlp.fastpath.wire import Unsupported as Unsupported  # what callers catch
from exporters.otlp.fastpath.wire import any_value as _any_value
from exporters.otlp.fastpath.wire import field as _field
from exporters.otlp.fastpath.wire import head as _head
from exporters.otlp.fastpath.wire import pair as _pair
from exporters.otlp.fastpath.wire import schema_url as _schema_url
from exporters.otlp.fastpath.wire import varint as _varint

#: Span.kind (field 6) = SPAN_KIND_INTERNAL, written after every span name.
_KIND_INTERNAL = b"\x30\x01"
#: Span.flags (field 16, fixed32): the "is remote" bit is known (0x100), and set (0x200).
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", 0x100)
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", 0x300)
#: Span.status (field 15) when unset: an empty message, as the SDK writes it.
_STATUS_UNSET = b"\x7a\x00"
#: What ends a span with its status unset: the status, then the flags.
_TAIL_LOCAL = _STATUS_UNSET + _FLAGS_LOCAL
_TAIL_REMOTE = _STATUS_UNSET + _FLAGS_REMOTE
_FIXED64 = struct.Struct("<Q").pack
#: span_id (field 2) and parent_span_id (field 4), 8 bytes each, big-endian.
_IDS = struct.Struct(">2sQ2sQ").pack
#: Start and end times (fields 7 and 8, fixed64) in one call.
_TIMES = struct.Struct("<BQBQ").pack
#: Entries of each encoding cache; a full cache is emptied and refilled.
_CACHE_SIZE = 2048


try:  # compiled builds: a batch of one origin written into one buffer (which raises
    # Unsupported as the encoder does)
    from exporters.otlp.fastpath.span_writer import SpanWriter as _SpanWriter
    from exporters.otlp.fastpath.span_writer import write_spans as _write_spans
except ImportError:
    _SpanWriter = _write_spans = None


#: The head of a ``ScopeSpans.spans`` field, by the span's encoded size (most spans
#: are 100 to 400 bytes).
_HEADS_UP_TO = 1024
_SPAN_HEADS = [_head(b"\x12", size) for size in range(_HEADS_UP_TO)]


class _Pairs:
    """Encoded attributes under one tag. String values come from a cache (by key, then
    value), bounded; other values are encoded each time after the cached key."""

    __slots__ = ("by_key", "float_heads", "int_heads", "keys", "size", "tag")

    def __init__(self, tag: bytes) -> None:
        self.tag = tag
        self.by_key: dict[str, dict[str, bytes]] = {}
        #: key -> the encoded ``KeyValue.key`` field and the ``value`` tag.
        self.keys: dict[str, bytes] = {}
        #: key -> the field's head for an int value, by the length of its varint.
        self.int_heads: dict[str, list[bytes]] = {}
        #: key -> all of a float attribute's field before its eight bytes.
        self.float_heads: dict[str, bytes] = {}
        self.size = 0

    def add(self, key: str, value: Any) -> bytes:
        """The field for a string pair not in the cache yet, now cached."""
        if self.size >= _CACHE_SIZE:
            self.by_key.clear()
            self.size = 0
        values = self.by_key.get(key)
        if values is None:
            values = self.by_key[key] = {}
        field = values[value] = _pair(self.tag, key, value)
        self.size += 1
        return field

    def other(self, key: str, value: Any) -> bytes:
        """The field for a value that is not a string: token counts and sizes, mostly,
        written after a cached head that depends only on the key and the varint's
        length."""
        if type(value) is int and 0 <= value < 0x200000:
            if value < 0x80:
                varint = _SMALL[value]
            elif value < 0x4000:
                varint = bytes((value & 0x7F | 0x80, value >> 7))
            else:
                varint = bytes((value & 0x7F | 0x80, (value >> 7) & 0x7F | 0x80, value >> 14))
            heads = self.int_heads.get(key) or self.int_field_heads(key)
            return heads[len(varint)] + varint
        if type(value) is float:
            return (self.float_heads.get(key) or self.float_field_head(key)) + _DOUBLE(value)
        head = self.keys.get(key)
        if head is None:
            if len(self.keys) >= _CACHE_SIZE:
                self.keys.clear()
            head = self.keys[key] = _field(b"\x0a", key.encode()) + b"\x12"
        encoded = _any_value(value)
        body = head + _SMALL[len(encoded)] + encoded if len(encoded) < 0x80 else (
            head + _varint(len(encoded)) + encoded)
        return _head(self.tag, len(body)) + body

    def int_field_heads(self, key: str) -> list[bytes]:
        """For each varint length 1 to 3: all of an int attribute's field before the
        varint."""
        if len(self.int_heads) >= _CACHE_SIZE:
            self.int_heads.clear()
        key_field = _field(b"\x0a", key.encode())
        heads = [b""]
        for size in (1, 2, 3):
            value = b"\x12" + _SMALL[1 + size] + b"\x18"
            heads.append(_head(self.tag, len(key_field) + len(value) + size) + key_field + value)
        self.int_heads[key] = heads
        return heads

    def float_field_head(self, key: str) -> bytes:
        """All of a float attribute's field before the double's eight bytes."""
        if len(self.float_heads) >= _CACHE_SIZE:
            self.float_heads.clear()
        key_field = _field(b"\x0a", key.encode())
        value = b"\x12\x09\x21"  # KeyValue.value: an AnyValue of 9 bytes, double_value
        head = self.float_heads[key] = (
            _head(self.tag, len(key_field) + len(value) + 8) + key_field + value)
        return head

    def encode(self, attributes: dict[str, Any]) -> bytes:
        by_key = self.by_key
        out = []
        for key, value in attributes.items():
            if type(value) is str:
                try:
                    out.append(by_key[key][value])
                except KeyError:
                    out.append(self.add(key, value))
            else:
                out.append(self.other(key, value))
        return b"".join(out)


class SpanEncoder:
    """Encodes batches of finished spans; keeps small caches, so one per exporter.

    Not thread-safe: the span processor calls its exporter from one thread at a time.
    """

    def __init__(self) -> None:
        self._span_pairs = _Pairs(b"\x4a")
        self._event_pairs = _Pairs(b"\x1a")
        #: Span name -> its field and the span kind.
        self._names: dict[str, bytes] = {}
        self._headers: dict[int, tuple[Any, bytes, bytes]] = {}
        self._states: dict[int, tuple[Any, bytes]] = {}
        #: trace id -> its field (the spans of one trace come together).
        self._traces: dict[int, bytes] = {}
        #: The origin of the spans written as they ended (:meth:`span_writer`), which
        #: a batch holds as bytes.
        self.written_origin: Any = None

    def span_writer(self, origin: Any) -> Any:
        """A function that writes a finished span of ``origin`` (a tuple) as it ends:
        its ``ScopeSpans.spans`` field, which :meth:`encode_request` then takes in
        place of the tuple. None in a pure-Python build (written in Python, a span
        costs the same on either thread), or when spans of another origin are
        written so already (a batch's bytes say nothing of their origin).

        The function has caches of its own (a second encoder): the tracer calls it
        under its lock, while this encoder serves the export thread.
        """
        if _SpanWriter is None or self.written_origin not in (None, origin):
            return None
        self.written_origin = origin
        return _SpanWriter(SpanEncoder()).write

    def encode_span(self, span: tuple) -> bytes:
        """One finished span as its ``ScopeSpans.spans`` field, tag and length
        included: the bytes a request :meth:`encode_request` makes holds for it, for a
        span the writer does not handle (a parent it cannot write, an attribute value
        it refuses), which the batch writer would refuse as well: encoded by the SDK's
        encoder, as a batch of it would be, so that every span can be written when it
        ends."""
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        from telemetry.tracing.spans.record import to_readable

        request = encode_spans([to_readable(span)])
        body = request.resource_spans[0].scope_spans[0].spans[0].SerializeToString()
        return _head(b"\x12", len(body)) + body

    def encode_request(self, spans: Sequence[Any]) -> bytes:
        """The serialized ``ExportTraceServiceRequest`` for ``spans``: grouped by
        resource, then scope, in order of appearance, as the SDK groups them. A span
        written as it ended (bytes, :meth:`span_writer`) is one of
        :attr:`written_origin`'s.

        Raises :class:`Unsupported` for a batch it cannot encode.
        """
        #: resource -> (encoded resource, scope -> (encoded scope, encoded spans))
        groups: dict[Any, tuple[bytes, dict[Any, tuple[bytes, list[bytes]]]]] = {}
        if self.written_origin is not None:
            written_spans = [item for item in spans if type(item) is bytes]
            if written_spans:
                origin = self.written_origin
                resource_bytes, scope_bytes = self._header(origin)
                groups[origin.resource] = (resource_bytes,
                                           {origin.scope: (scope_bytes, written_spans)})
                if len(written_spans) == len(spans):
                    return self._request(groups)
                spans = [item for item in spans if type(item) is not bytes]
        if _write_spans is not None and spans:
            written = _write_spans(self, list(spans))  # compiled: one origin, one buffer
            if written is not None:
                first = spans[0][0]
                resource_bytes, scope_bytes = self._header(first)
                scopes = groups.setdefault(first.resource, (resource_bytes, {}))[1]
                scopes.setdefault(first.scope, (scope_bytes, []))[1].append(written)
                return self._request(groups)
        origin: Any = None
        current: list[bytes] = []
        append = current.append
        # The span loop is written out here, with the caches in local variables: a
        # call and a dozen attribute lookups per span are a fifth of its cost.
        traces, names, pairs = self._traces, self._names, self._span_pairs
        by_key, int_heads, heads, join = pairs.by_key, pairs.int_heads, _SPAN_HEADS, b"".join
        for span in spans:
            (span_origin, name, trace_id, span_id, parent, state, start, end, attributes,
             events, dropped_events, status, _) = span
            if span_origin is not origin:
                # a change of group (once per batch here): equal objects share one
                origin = span_origin
                resource_bytes, scope_bytes = self._header(origin)
                scopes = groups.setdefault(origin.resource, (resource_bytes, {}))[1]
                current = scopes.setdefault(origin.scope, (scope_bytes, []))[1]
                append = current.append
            try:
                head = traces[trace_id]  # spans of a trace come together
            except KeyError:
                head = self._trace(trace_id)
            if parent is not None and state is None and start and end:  # the common case
                out = [head, _IDS(b"\x12\x08", span_id, b"\x22\x08", parent.span_id),
                       names.get(name) or self._name(name), _TIMES(0x39, start, 0x41, end)]
                tail = _TAIL_REMOTE if parent.remote else _TAIL_LOCAL
            else:
                out = self._prefix(head, name, span_id, parent, state, start, end)
                tail = _TAIL_REMOTE if parent is not None and parent.remote else _TAIL_LOCAL
            for key, value in attributes.items():
                kind = type(value)
                if kind is str:
                    try:
                        out.append(by_key[key][value])
                    except KeyError:
                        out.append(pairs.add(key, value))
                elif kind is int and 0 <= value < 0x200000:  # token counts, items, sizes
                    field_heads = int_heads.get(key) or pairs.int_field_heads(key)
                    if value < 0x80:
                        out.append(field_heads[1] + _SMALL[value])
                    elif value < 0x4000:
                        out.append(field_heads[2] + bytes((value & 0x7F | 0x80, value >> 7)))
                    else:
                        out.append(field_heads[3] + bytes((value & 0x7F | 0x80,
                                                           (value >> 7) & 0x7F | 0x80,
                                                           value >> 14)))
                else:
                    out.append(pairs.other(key, value))
            if events or dropped_events or status is not None:
                out.append(self._rare(events, dropped_events, status))
                tail = tail[2:]  # the status is written: only the flags are left
            out.append(tail)
            body = join(out)
            size = len(body)
            append(heads[size] if size < _HEADS_UP_TO else _head(b"\x12", size))
            append(body)
        return self._request(groups)

    def _request(self, groups: dict[Any, tuple[bytes, dict[Any, tuple[bytes, list[bytes]]]]]
                 ) -> bytes:
        """The request from the encoded spans grouped by resource, then scope."""
        # One join at the end: the lengths of the nested fields are summed, not the
        # fields copied into their parents one level at a time.
        result: list[bytes] = []
        for resource, (resource_bytes, scopes) in groups.items():
            resource_at = len(result)
            result.append(b"")  # ResourceSpans' head, once its length is known
            result.append(resource_bytes)
            resource_size = len(resource_bytes)
            for scope, (scope_bytes, encoded) in scopes.items():
                scope_tail = _schema_url(scope.schema_url if scope is not None else "")
                scope_size = len(scope_bytes) + sum(map(len, encoded)) + len(scope_tail)
                scope_head = _head(b"\x12", scope_size)
                result.append(scope_head)
                result.append(scope_bytes)
                result += encoded
                result.append(scope_tail)
                resource_size += len(scope_head) + scope_size
            resource_tail = _schema_url(resource.schema_url)
            result.append(resource_tail)
            result[resource_at] = _head(b"\x0a", resource_size + len(resource_tail))
        return b"".join(result)

    # -- parts -----------------------------------------------------------------------

    def _header(self, origin: Any) -> tuple[bytes, bytes]:
        """The encoded resource and scope (ResourceSpans.resource, ScopeSpans.scope),
        cached while the same origin is in use."""
        cached = self._headers.get(id(origin))
        if cached is not None and cached[0] is origin:
            return cached[1], cached[2]
        resource, scope = origin.resource, origin.scope
        resource_bytes = _field(b"\x0a", b"".join(
            _pair(b"\x0a", key, value) for key, value in resource.attributes.items()))
        if scope is None:
            scope_bytes = b"\x0a\x00"
        else:
            body = _field(b"\x0a", scope.name.encode()) if scope.name else b""
            if scope.version:
                body += _field(b"\x12", scope.version.encode())
            body += b"".join(_pair(b"\x1a", key, value)
                             for key, value in (scope.attributes or {}).items())
            scope_bytes = _field(b"\x0a", body)
        if len(self._headers) >= 16:
            self._headers.clear()
        self._headers[id(origin)] = (origin, resource_bytes, scope_bytes)
        return resource_bytes, scope_bytes

    def _trace(self, trace_id: int) -> bytes:
        """Span.trace_id (field 1), cached: the spans of a trace come together."""
        traces = self._traces
        if len(traces) >= 64:
            traces.clear()
        head = traces[trace_id] = b"\x0a\x10" + trace_id.to_bytes(16, "big")
        return head

    def _prefix(self, head: bytes, name: str, span_id: int, parent: Any, state: Any,
                start: int, end: int) -> list[bytes]:
        """A span's fields up to its attributes, for the less common cases: a root, a
        trace state, a zero time."""
        if parent is None:
            out = [head, b"\x12\x08", span_id.to_bytes(8, "big")]
        elif state is None:
            out = [head, _IDS(b"\x12\x08", span_id, b"\x22\x08", parent.span_id)]
        else:
            out = [head, b"\x12\x08", span_id.to_bytes(8, "big"), self._state(state),
                   b"\x22\x08", parent.span_id.to_bytes(8, "big")]
        out.append(self._names.get(name) or self._name(name))
        if start and end:
            out.append(_TIMES(0x39, start, 0x41, end))
        else:
            out.append((b"\x39" + _FIXED64(start) if start else b"")
                       + (b"\x41" + _FIXED64(end) if end else b""))
        return out

    def _name(self, name: str) -> bytes:
        """Span.name and Span.kind, cached by name."""
        if len(self._names) >= _CACHE_SIZE:
            self._names.clear()
        encoded = self._names[name] = (
            (_field(b"\x2a", name.encode()) if name else b"") + _KIND_INTERNAL)
        return encoded

    def _rare(self, events: list | None, dropped_events: int, status: str | None) -> bytes:
        """Events, their dropped count and the status, when there is any of them."""
        out = []
        for event in events or ():
            out.append(_field(b"\x5a", self._event(event)))
        if dropped_events:
            out.append(b"\x60" + _varint(dropped_events))
        if status is None:
            out.append(_STATUS_UNSET)
        else:
            out.append(_field(b"\x7a", (_field(b"\x12", status.encode()) if status else b"")
                              + b"\x18\x02"))
        return b"".join(out)

    def _state(self, state: Any) -> bytes:
        """Span.trace_state (field 3): the W3C header form; nothing when empty."""
        cached = self._states.get(id(state))
        if cached is not None and cached[0] is state:
            return cached[1]
        text = ",".join(f"{key}={value}" for key, value in state.items())
        encoded = _field(b"\x1a", text.encode()) if text else b""
        if len(self._states) >= 64:
            self._states.clear()
        self._states[id(state)] = (state, encoded)
        return encoded

    def _event(self, event: tuple) -> bytes:
        name, timestamp, attributes = event
        body = b"\x09" + _FIXED64(timestamp) if timestamp else b""
        if name:
            body += _field(b"\x12", name.encode())
        if attributes:
            body += self._event_pairs.encode(attributes)
        return body


def sdk_request(encoder: SpanEncoder, spans: Sequence[Any]) -> bytes:
    """The request for a batch :meth:`SpanEncoder.encode_request` does not handle: its
    tuples encoded by the SDK's encoder, and the spans written as they ended by
    ``encoder`` (two serialized requests one after the other are their merge)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from telemetry.tracing.spans.record import to_readable

    written = [span for span in spans if type(span) is bytes]
    tuples = [to_readable(span) for span in spans if type(span) is not bytes]
    request = encode_spans(tuples).SerializeToString() if tuples else b""
    return request + (encoder.encode_request(written) if written else b"")
