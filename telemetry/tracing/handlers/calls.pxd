# The LLM and tool call handlers' arguments and locals, typed in a compiled build (see
# state.pxd). The pure-Python build ignores this file.
cimport cython

from telemetry.tracing.handlers.handoffs cimport HandoffSignals
from telemetry.tracing.spans.record cimport SpanStub
from telemetry.tracing.spans.table cimport OpenSpan


cdef class CallSignals(HandoffSignals):
    @cython.locals(entry=OpenSpan)
    cpdef tuple _call_parent(self, dict f, wf, agent, double ts)
    @cython.locals(texts=dict, parent=SpanStub, floor=double, attributes=dict, names=dict,
                   start=double)
    cpdef _llm_called(self, dict f, double ts)
    @cython.locals(texts=dict, parent=SpanStub, floor=double, attributes=dict, names=dict,
                   start=double)
    cpdef _tool_completed(self, dict f, double ts)
    @cython.locals(entry=OpenSpan)
    cpdef _handoff_completed_noting_loops(self, dict f, double ts)
