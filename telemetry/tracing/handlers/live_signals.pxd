# The send handlers' arguments and locals, typed in a compiled build (see state.pxd).
# The pure-Python build ignores this file.
cimport cython

from telemetry.tracing.handlers.calls cimport CallSignals
from telemetry.tracing.live cimport LiveSpan, enter, leave
from telemetry.tracing.spans.record cimport SpanStub


cdef class LiveSignals(CallSignals):
    cpdef _open_agent_now(self, dict f, double ts)
    cpdef SpanStub _sent_workflow(self, wf)
    @cython.locals(lives=dict, live=LiveSpan)
    cpdef _opened(self, dict f, key, SpanStub span)
    @cython.locals(live=LiveSpan)
    cpdef _leave_agent_now(self, dict f, double ts)
