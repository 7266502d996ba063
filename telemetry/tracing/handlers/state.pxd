# In a compiled build, the tracer's state is a C structure: the handlers (the classes
# built on it, each with the .pxd beside its module) read its fields, the open-span
# table's entries (table.pxd) and the spans' ids (record.pxd) without a lookup, and
# call the shared correlation without a method lookup. The pure-Python build ignores
# this file; both behave the same.
cimport cython

from telemetry.aggregation.handlers.operations cimport CallRuns, HandoffWindows
from telemetry.tracing.spans.builder cimport SpanBuilder
from telemetry.tracing.spans.record cimport SpanStub
from telemetry.tracing.spans.table cimport OpenSpan, OpenSpans


cdef class TracerState:
    cdef public SpanBuilder _tracer
    cdef public object _aggregator, _guard, _clock, _opened_key
    cdef public HandoffWindows _loops
    cdef public CallRuns _runs
    cdef public object _feeding
    cdef public OpenSpans _open
    cdef public dict _texts, _decision_names, _agent_names, _handoff_span_names
    cdef public dict _call_names, _tool_names, _lives, send_handlers, follower_handlers
    cdef public bint _capture, _live, _inherit, _attached
    cdef public Py_ssize_t _max_text, wait_limit, _repeat_threshold

    @cython.locals(texts=dict)
    cpdef tuple _names(self, dict f, key)
    cpdef SpanStub _start(self, name, SpanStub parent, attributes, double ts)
    cpdef bint _pruned(self, SpanStub parent)
    cpdef OpenSpan _workflow(self, workflow_id)
    @cython.locals(entry=OpenSpan)
    cpdef OpenSpan _agent(self, workflow_id, agent)
    cpdef tuple _scope(self, dict f, OpenSpan entry, double ts)
    cpdef tuple _agent_scope(self, dict f, wf, agent, double ts)
