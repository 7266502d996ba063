# In a compiled build, a live span is a C structure: a send reads the current span's
# ids (exemplars) and an opening or closing signal enters or leaves one without a
# lookup. The pure-Python build ignores this file.
cimport cython

from telemetry.tracing.spans.record cimport SpanStub


cdef class LiveSpan:
    cdef public object stub, below, saved, owner, ids
    cdef public bint open


@cython.locals(live=LiveSpan)
cdef object _open_below(object span)
@cython.locals(below=object)
cpdef LiveSpan enter(SpanStub stub, owner=*)
@cython.locals(inner=LiveSpan, below=object)
cpdef leave(LiveSpan live)
@cython.locals(live=LiveSpan)
cpdef object sampled_span_ids()
