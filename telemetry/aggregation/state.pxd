# In a compiled build, the aggregates are C structures: the pair of cells a handoff
# or decision updates, and the state itself, whose fields are typed so that the
# handlers (handlers/table.pxd, handlers/calls.pxd) read them without an attribute
# lookup. The pure-Python build ignores this file.
from telemetry.aggregation.handlers.operations cimport OperationsState
from telemetry.aggregation.series cimport CounterCell, GaugeCell, HistogramCell


cdef class CellPair:
    cdef public CounterCell counter
    cdef public HistogramCell histogram


cdef class AggregateState:
    cdef public dict series, active, last_seen
    cdef public dict handoff_cells, decision_cells, llm_cells, tool_cells
    cdef public Py_ssize_t max_series, max_label_length
    cdef public object handoffs, handoff_duration, decisions, decision_duration, errors
    cdef public object safety_blocks, agent_active_time, context_items, context_tokens
    cdef public object context_refresh_duration, workflows, workflow_duration, mode_series
    cdef public object llm_calls, llm_errors, llm_duration, llm_tokens, llm_cost
    cdef public object tool_calls, tool_errors, tool_duration, tool_repeats
    cdef public object handoff_loops, dropped
    cdef public OperationsState ops
    cdef public CounterCell workflows_started, state_saves
    cdef public GaugeCell agents_active, state_file_size
    cdef public HistogramCell state_save_duration, state_load_duration
    cdef public double wall_offset, last_load_ms
    cdef public object mode, state_size

    cpdef touch(self, object agent, double now)
