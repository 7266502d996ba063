# In a compiled build, the per-event work every signal shares reads the send's keyword
# arguments as the dict they are and the event counter as the C structure it is. The
# pure-Python build ignores this file.
from telemetry.aggregation.series cimport CounterCell


cpdef bint _plain_time(dict fields, object known_workflow_id)

cpdef _count(CounterCell cell)
