# cython: language_level=3
"""A batch's spans written into one buffer (compiled builds only).

:meth:`exporters.otlp.fastpath.span_encoding.SpanEncoder.encode_request` writes a span as
a list of pieces joined into bytes: its ids and times packed by ``struct`` from Python
ints, the cached fields between them, one join per span and then one for the batch.
Most of that is allocation and copying. :func:`write_spans` writes the same fields,
from the same caches, straight into one growing buffer: ids and times converted to C
integers and stored byte by byte, each span's length patched in front of it once
written. The bytes are the same (``tests/unit/exporters/otlp/test_span_encoding.py``
compares both with the SDK's). :class:`SpanWriter` writes one span the same way,
as it ends. A pure-Python build has only the list-and-join path.
"""

from cpython.bytearray cimport (
    PyByteArray_AS_STRING,
    PyByteArray_FromStringAndSize,
    PyByteArray_Resize,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError, PyDict_Next
from cpython.long cimport PyLong_AsUnsignedLongLong, PyLong_AsUnsignedLongLongMask
from cpython.object cimport PyObject
from cpython.float cimport PyFloat_AS_DOUBLE
from libc.string cimport memcpy, memmove

from exporters.otlp.fastpath.span_encoding cimport SpanEncoder, _Pairs
from exporters.otlp.fastpath.span_encoding import Unsupported
from telemetry.tracing.spans.record cimport SpanStub

cdef extern from "Python.h":
    int PyFloat_Pack8(double value, char *at, int little_endian) except -1

cdef enum:
    _LENGTH_ROOM = 3  # bytes kept for a span's length: three varint bytes, 2 MiB


cdef class _Buffer:
    """A bytearray written through a pointer, grown when a write needs room."""

    cdef bytearray data
    cdef unsigned char *at
    cdef Py_ssize_t pos, cap

    def __cinit__(self, Py_ssize_t cap):
        self.data = PyByteArray_FromStringAndSize(NULL, cap)  # not zeroed: all written
        self.cap = cap
        self.pos = 0
        self.at = <unsigned char *>PyByteArray_AS_STRING(self.data)

    cdef inline void room(self, Py_ssize_t size) except *:
        if self.pos + size > self.cap:
            self.cap = 2 * self.cap + size
            PyByteArray_Resize(self.data, self.cap)
            self.at = <unsigned char *>PyByteArray_AS_STRING(self.data)

    cdef inline void put(self, bytes piece) except *:
        cdef Py_ssize_t size = PyBytes_GET_SIZE(piece)
        self.room(size)
        memcpy(self.at + self.pos, PyBytes_AS_STRING(piece), size)
        self.pos += size

    cdef inline void byte(self, unsigned char value) except *:
        self.room(1)
        self.at[self.pos] = value
        self.pos += 1

    cdef inline void big_endian(self, unsigned long long value) except *:
        cdef int shift
        self.room(8)
        for shift in range(8):
            self.at[self.pos + shift] = <unsigned char>(value >> (56 - 8 * shift))
        self.pos += 8

    cdef inline void little_endian(self, unsigned long long value) except *:
        cdef int shift
        self.room(8)
        for shift in range(8):
            self.at[self.pos + shift] = <unsigned char>(value >> (8 * shift))
        self.pos += 8

    cdef inline void float64(self, double value) except *:
        """``value`` as struct's ``<d`` writes it: CPython's own packing."""
        self.room(8)
        PyFloat_Pack8(value, <char *>(self.at + self.pos), 1)
        self.pos += 8

    cdef inline void little_endian32(self, unsigned int value) except *:
        cdef int shift
        self.room(4)
        for shift in range(4):
            self.at[self.pos + shift] = <unsigned char>(value >> (8 * shift))
        self.pos += 4

    cdef inline void varint(self, unsigned long long value) except *:
        self.room(10)
        while value >= 0x80:
            self.at[self.pos] = <unsigned char>((value & 0x7F) | 0x80)
            self.pos += 1
            value >>= 7
        self.at[self.pos] = <unsigned char>value
        self.pos += 1


cdef inline PyObject *_get(dict table, object key) except? NULL:
    """``table[key]`` or NULL, without ``PyDict_GetItem``'s saving and restoring of
    the error indicator around every lookup (the keys are str and int: their hash
    cannot fail)."""
    return PyDict_GetItemWithError(table, key)


cdef inline unsigned long long _u64(object value) except? 0xFFFFFFFFFFFFFFFF:
    """An id or an epoch time in nanoseconds (an int below 2**64, which the tracer and
    the parent's traceparent guarantee) as a C integer. ``PyLong_AsUnsignedLongLong``
    converts any int over 2**30 through a general byte-array routine, about a tenth
    of the writer's instructions per span; the masking conversion reads its digits."""
    return PyLong_AsUnsignedLongLongMask(value)


def write_spans(SpanEncoder encoder, list spans):
    """The ``ScopeSpans.spans`` fields of ``spans``, in order, as one bytes object; None
    when the batch is not the common case this handles: every span of one origin
    (the caller groups the others). Raises
    :class:`~exporters.otlp.fastpath.span_encoding.Unsupported` as the encoder does."""
    cdef Py_ssize_t count = len(spans), index
    cdef _Buffer out = _Buffer(count * 320 + 256)
    cdef tuple span
    cdef object origin, parent
    if count == 0:
        return b""
    origin = (<tuple>spans[0])[0]
    for index in range(count):
        span = <tuple>spans[index]
        parent = span[4]
        if span[0] is not origin or not (parent is None or isinstance(parent, SpanStub)):
            return None
    for index in range(count):
        _write_span(out, encoder, <tuple>spans[index])
    return PyBytes_FromStringAndSize(<char *>out.at, out.pos)  # one copy, not a slice's two


cdef class SpanWriter:
    """Writes one finished span at a time, as it ends, into bytes of its own: what
    :meth:`~exporters.otlp.fastpath.span_encoding.SpanEncoder.span_writer` gives the
    tracer. One call from the tracer into C per span, into a buffer kept from span to
    span; a span it does not handle goes to the encoder's ``encode_span`` (the SDK's
    encoder). Not thread-safe: the tracer calls it under its lock."""

    cdef SpanEncoder encoder
    cdef _Buffer out

    def __cinit__(self, SpanEncoder encoder):
        self.encoder = encoder
        self.out = _Buffer(1024)

    def write(self, tuple span):
        """``span``'s ``ScopeSpans.spans`` field, tag and length included."""
        cdef _Buffer out = self.out
        parent = span[4]
        if parent is not None and not isinstance(parent, SpanStub):
            return self.encoder.encode_span(span)
        out.pos = 0
        try:
            _write_span(out, self.encoder, span)
        except Unsupported:
            return self.encoder.encode_span(span)
        return PyBytes_FromStringAndSize(<char *>out.at, out.pos)


cdef int _write_span(_Buffer out, SpanEncoder encoder, tuple span) except -1:
    """Append ``span``'s ``ScopeSpans.spans`` field to ``out``; its parent is None or a
    :class:`SpanStub`."""
    cdef Py_ssize_t start, size, length_size, item
    cdef _Pairs pairs = encoder._span_pairs
    cdef dict by_key = pairs.by_key, int_heads = pairs.int_heads, attributes
    cdef dict float_heads = pairs.float_heads
    cdef object parent, name, key, value, state, events, status
    cdef SpanStub stub
    cdef PyObject *found
    cdef PyObject *raw_key
    cdef PyObject *raw_value
    cdef unsigned long long number
    cdef bint remote
    cdef list heads
    name, parent, state = span[1], span[4], span[5]
    start = out.pos
    out.room(1 + _LENGTH_ROOM)
    out.pos += 1 + _LENGTH_ROOM  # the tag and the length, once known
    found = _get(encoder._traces, span[2])
    out.put(<bytes><object>found if found is not NULL else encoder._trace(span[2]))
    out.byte(0x12)
    out.byte(0x08)
    out.big_endian(_u64(span[3]))
    remote = False
    if parent is not None:
        if state is not None:
            out.put(encoder._state(state))
        stub = <SpanStub>parent
        remote = stub.remote
        out.byte(0x22)
        out.byte(0x08)
        out.big_endian(_u64(stub.span_id))
    found = _get(encoder._names, name)
    out.put(<bytes><object>found if found is not NULL else encoder._name(name))
    if span[6]:
        out.byte(0x39)
        out.little_endian(_u64(span[6]))
    if span[7]:
        out.byte(0x41)
        out.little_endian(_u64(span[7]))
    attributes = <dict>span[8]
    item = 0
    while PyDict_Next(attributes, &item, &raw_key, &raw_value):
        key, value = <object>raw_key, <object>raw_value
        if type(value) is str:
            found = _get(by_key, key)
            if found is not NULL:
                found = _get(<dict><object>found, value)
            out.put(<bytes><object>found if found is not NULL else pairs.add(key, value))
        elif type(value) is int and 0 <= value < 0x200000:
            found = _get(int_heads, key)
            heads = <list><object>found if found is not NULL else pairs.int_field_heads(key)
            number = PyLong_AsUnsignedLongLong(value)
            out.put(<bytes>heads[1 if number < 0x80 else 2 if number < 0x4000 else 3])
            out.varint(number)
        elif type(value) is float:
            found = _get(float_heads, key)
            out.put(<bytes><object>found if found is not NULL else
                    pairs.float_field_head(key))
            out.float64(PyFloat_AS_DOUBLE(value))
        else:
            out.put(pairs.other(key, value))
    events, status = span[9], span[11]
    if events or span[10] or status is not None:
        out.put(encoder._rare(events, span[10], status))
    else:
        out.byte(0x7a)  # Span.status, unset: an empty message
        out.byte(0x00)
    out.byte(0x85)  # Span.flags (fixed32): "is remote" known, and whether it is set
    out.byte(0x01)
    out.little_endian32(0x300 if remote else 0x100)
    # The span's length, in front of it, then the span moved up against it.
    size = out.pos - start - 1 - _LENGTH_ROOM
    length_size = 1 if size < 0x80 else 2 if size < 0x4000 else 3
    if size >= 0x200000:
        raise ValueError("a span of more than 2 MiB")
    out.at[start] = 0x12
    number = size
    for item in range(length_size):
        out.at[start + 1 + item] = <unsigned char>(
            (number & 0x7F) | (0x80 if item < length_size - 1 else 0))
        number >>= 7
    if length_size < _LENGTH_ROOM:
        memmove(out.at + start + 1 + length_size, out.at + start + 1 + _LENGTH_ROOM, size)
        out.pos -= _LENGTH_ROOM - length_size
    return 0
