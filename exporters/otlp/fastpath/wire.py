"""The protobuf wire format pieces both OTLP encoders write: varints, the head and
body of a length-delimited field, an ``AnyValue``, a ``KeyValue`` attribute and a
``schema_url``.

:mod:`exporters.otlp.fastpath.span_encoding` and
:mod:`exporters.otlp.fastpath.metric_encoding` write OTLP requests straight to bytes
with these, each byte as the official ``opentelemetry.proto`` classes serialize it
(their tests compare the two). A value ``AnyValue`` cannot carry as written here
(anything but str, bool, int, float or sequences of them; an int beyond 64 bits)
raises :class:`Unsupported`, and the caller falls back to the SDK's encoder.
"""

from __future__ import annotations

import struct
from typing import Any

#: A double, little-endian (``fixed64`` and ``double`` fields).
DOUBLE = struct.Struct("<d").pack
#: The varint of each value below 128: one byte, the value itself.
SMALL = [bytes((n,)) for n in range(128)]


class Unsupported(Exception):
    """A value or span the encoders do not handle: the caller falls back to the SDK."""


def varint(value: int) -> bytes:
    """``value`` (not negative) as a base-128 varint."""
    if value < 0x80:
        return SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    size = len(payload)
    return tag + (SMALL[size] if size < 0x80 else varint(size)) + payload


def head(tag: bytes, size: int) -> bytes:
    """The tag and length of a length-delimited field of ``size`` bytes."""
    return tag + (SMALL[size] if size < 0x80 else varint(size))


def any_value(value: Any) -> bytes:
    """An ``AnyValue`` message."""
    kind = type(value)
    if kind is str:
        return field(b"\x0a", value.encode())
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not -(1 << 63) <= value < (1 << 63):
            raise Unsupported("int out of range")
        return b"\x18" + varint(value & 0xFFFFFFFFFFFFFFFF)
    if kind is float:
        return b"\x21" + DOUBLE(value)
    if kind is tuple or kind is list:
        return field(b"\x2a", b"".join(field(b"\x0a", any_value(v)) for v in value))
    raise Unsupported(f"attribute value of type {kind.__name__}")


def pair(tag: bytes, key: str, value: Any) -> bytes:
    """One attribute: a ``KeyValue`` field under ``tag``."""
    return field(tag, field(b"\x0a", key.encode()) + field(b"\x12", any_value(value)))


def schema_url(url: str | None) -> bytes:
    """``schema_url`` (field 3 of ResourceSpans and ScopeSpans, ResourceMetrics and
    ScopeMetrics), after what they hold; nothing when there is none."""
    return field(b"\x1a", url.encode()) if url else b""
