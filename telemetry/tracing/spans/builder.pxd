# In a compiled build, the span builder is a C structure: making a span reads its
# sampling rules, ids and queue, and the parent's ids and flags (record.pxd), without
# a lookup. The pure-Python build ignores this file.
from telemetry.tracing.spans.record cimport SpanStub


cdef class SpanBuilder:
    cdef public object sampler, origin, _ids, _rules, _processor, _processors, _sink
    cdef public object emit, queue, on_sink_change, write, _emit_record
    cdef public bint _fast_ids, _check_lengths, _copy_local, _takes_tuples
    cdef public long _random_root
    cdef public Py_ssize_t max_events, max_length, max_event_length, max_attributes
    cdef public Py_ssize_t quiet_below

    cpdef SpanStub start_span(self, name, SpanStub parent, attributes, start_ns)
    cpdef leaf(self, name, SpanStub parent, attributes, start_ns, end_ns, span_id=*)
