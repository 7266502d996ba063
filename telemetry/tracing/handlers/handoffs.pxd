# The handoff and state handlers' arguments and locals, typed in a compiled build
# (see state.pxd). The pure-Python build ignores this file.
cimport cython

from telemetry.tracing.spans.record cimport SpanStub
from telemetry.tracing.handlers.state cimport TracerState
from telemetry.tracing.spans.table cimport OpenSpan


cdef class HandoffSignals(TracerState):
    @cython.locals(texts=dict)
    cpdef tuple _handoff_names(self, dict f)
    @cython.locals(entry=OpenSpan, parent=SpanStub, names=dict)
    cpdef _handoff_started(self, dict f, double ts)
    @cython.locals(entry=OpenSpan, parent=SpanStub, floor=double)
    cpdef _handoff_completed(self, dict f, double ts)
    @cython.locals(entry=OpenSpan, parent=SpanStub, floor=double, start=double,
                   attributes=dict)
    cpdef _state(self, name, dict f, double ts)
