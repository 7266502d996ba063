# In a compiled build the tracer is the last of the C structures its handlers are
# (state.pxd): it has no instance dictionary, so their calls to each other need no
# check for an override. The pure-Python build ignores this file.
from telemetry.tracing.handlers.events cimport SpanSignals


cdef class SignalTracer(SpanSignals):
    pass
