# In a compiled build, the operator state is a C structure whose tables are typed, so
# the handlers (calls.pxd, table.pxd) read them and call its methods without an
# attribute or method lookup. The pure-Python build ignores this file; both builds
# behave the same.
cimport cython


cdef class HandoffWindows:
    cdef public Py_ssize_t size, max_workflows, max_length, evicted
    cdef public dict windows

    cpdef bint returns_to(self, object workflow_id, object from_agent, object to_agent)
    @cython.locals(windows=dict)
    cpdef window(self, object workflow_id)
    cpdef forget(self, object workflow_id)


cdef class CallRuns:
    cdef public Py_ssize_t max_agents, max_length
    cdef public dict last

    @cython.locals(last=dict)
    cpdef object run(self, object agent, object tool, object call_key)
    cpdef forget(self, object agent)


cdef class OperationsState:
    cdef public Py_ssize_t max_agents, max_label_length, loop_window, repeat_threshold
    cdef public Py_ssize_t max_workflows
    cdef public dict prices, last_seen, open_tools, in_flight, mode_time
    cdef public CallRuns runs
    cdef public HandoffWindows loops
    cdef public double mode_since
    cdef public object last_save

    cpdef object short(self, object name)
    cpdef cost(self, object model, object input_tokens, object output_tokens,
               object cached_input_tokens)
