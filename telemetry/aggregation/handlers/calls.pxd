# In a compiled build, the call bundles are C structures whose cells are typed
# (series.pxd), and the fast paths take the send's keyword arguments as the dict they
# are, so their reads and updates need no method or attribute lookup. The pure-Python
# build ignores this file; both builds behave the same.
cimport cython

from telemetry.aggregation.handlers.operations cimport OperationsState
from telemetry.aggregation.series cimport CounterCell, HistogramCell
from telemetry.aggregation.state cimport AggregateState


cdef class LlmCells:
    cdef public CounterCell calls, cost
    cdef public HistogramCell duration, input, output, cached
    cdef public object provider


cdef class ToolCells:
    cdef public CounterCell calls
    cdef public HistogramCell duration
    cdef public object tool_key


@cython.locals(calls=CounterCell, cached=HistogramCell, cell=CounterCell, ops=OperationsState)
cpdef _record_llm(AggregateState state, LlmCells cells, object agent, object model,
                  double duration, object input_tokens, object output_tokens,
                  object cached_input_tokens, object cost, double now,
                  object error_type=*)

@cython.locals(cells=LlmCells)
cpdef bint llm_called_seen(AggregateState state, dict fields, object ts, double now)

@cython.locals(cells=ToolCells, ops=OperationsState, calls=list)
cpdef bint tool_started_seen(AggregateState state, dict fields, object ts, double now)

@cython.locals(ops=OperationsState, open_calls=list)
cpdef _record_tool(AggregateState state, object tool_key, CounterCell calls,
                   HistogramCell histogram, object agent, object tool, double duration,
                   object call_key, double now, object error_type=*)

@cython.locals(cells=ToolCells, calls=CounterCell, histogram=HistogramCell)
cpdef bint tool_completed_seen(AggregateState state, dict fields, object ts, double now)
