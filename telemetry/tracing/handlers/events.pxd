# The workflow, agent and decision handlers' arguments and locals, typed in a compiled
# build (see state.pxd). The pure-Python build ignores this file.
cimport cython

from telemetry.tracing.handlers.live_signals cimport LiveSignals
from telemetry.tracing.spans.record cimport SpanStub
from telemetry.tracing.spans.table cimport OpenSpan


cdef class SpanSignals(LiveSignals):
    @cython.locals(texts=dict, entry=OpenSpan, parent=SpanStub)
    cpdef _agent_activated(self, dict f, double ts)
    cpdef SpanStub _agent_span(self, agent, wf, SpanStub parent, double ts)
    @cython.locals(texts=dict, entry=OpenSpan)
    cpdef _agent_deactivated(self, dict f, double ts)
    @cython.locals(entry=OpenSpan)
    cpdef _context_updated(self, dict f, double ts)
    @cython.locals(texts=dict, entry=OpenSpan, parent=SpanStub, floor=double, start=double,
                   attributes=dict)
    cpdef _decision_made(self, dict f, double ts)
