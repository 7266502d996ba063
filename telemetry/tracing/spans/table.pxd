# In a compiled build, the open-span table and its entries are C structures: the
# handlers (state.pxd and the modules beside it) find an entry and read its span and
# times without a lookup. The pure-Python build ignores this file.
from telemetry.tracing.spans.record cimport SpanStub


cdef class OpenSpan:
    cdef public SpanStub span
    cdef public object key, workflow_id, agent, live, start_ns
    cdef public double opened, start_ts, last_ts
    cpdef touch(self, double ts)


cdef class OpenSpans:
    cdef public Py_ssize_t max_open
    cdef public double next_expiry
    cdef public object get
    cdef public object _clock, _on_unfinished, _open
    cdef public double _ttl
    cdef public dict _children, _latest_agent

    cpdef OpenSpan add(self, key, SpanStub span, workflow_id, agent, double ts)
    cpdef OpenSpan pop(self, key)
    cpdef _unindex(self, OpenSpan entry)
