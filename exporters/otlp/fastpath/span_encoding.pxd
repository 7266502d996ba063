# In a compiled build, the encoder and its caches are C structures and the span loop's
# locals are typed: the caches are the dicts they are, a finished span is the tuple
# it is, so their lookups and the loop need no generic call. The pure-Python build
# ignores this file; the bytes are the same (tests/unit/exporters/otlp/
# test_span_encoding.py compares them with the SDK's).
cimport cython


cdef class _Pairs:
    cdef public bytes tag
    cdef public dict by_key, keys, int_heads, float_heads
    cdef public Py_ssize_t size


cdef class SpanEncoder:
    cdef readonly _Pairs _span_pairs, _event_pairs
    cdef readonly dict _names, _headers, _states, _traces
    cdef public object written_origin

    @cython.locals(groups=dict, current=list, traces=dict, names=dict, pairs=_Pairs,
                   by_key=dict, int_heads=dict, heads=list, span=tuple, attributes=dict,
                   out=list, body=bytes, size=Py_ssize_t, result=list)
    cpdef bytes encode_request(self, spans)
