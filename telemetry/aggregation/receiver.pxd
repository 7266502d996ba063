# In a compiled build, the per-event work every signal shares reads the send's keyword
# arguments as the dict they are and the event counter as the C structure it is. The
# pure-Python build ignores this file.
from telemetry.aggregation.series cimport CounterCell


cpdef object _workflow_id(dict fields)

cpdef bint _plain_time(dict fields, object known_workflow_id)

cpdef object _timestamp(dict fields, double window_s)

cpdef _count(CounterCell cell)
