# In a compiled build, spans are C structures: their fields typed, so the builder and
# the handlers (state.pxd and the modules beside it) read a parent's ids and flags
# without a lookup. The pure-Python build ignores this file.

cdef class SpanStub:
    cdef public object trace_id, span_id, trace_state, _context, _otel_context
    cdef public long flags
    cdef public bint sampled, remote

    cpdef set_attribute(self, key, value)
    cpdef end(self, end_ns)


cdef class SpanRecord(SpanStub):
    cdef public object builder, name, parent, attributes, start_ns, events, status
    cdef public Py_ssize_t dropped_events


cdef class UnsampledRecord(SpanRecord):
    pass
