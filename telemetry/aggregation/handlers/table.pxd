# In a compiled build, the fast paths of the most frequent signals take the send's
# keyword arguments as the dict they are and the cells as the C structures they are
# (series.pxd, state.pxd), so their reads and updates need no method or attribute
# lookup. The pure-Python build ignores this file; both builds behave the same.
cimport cython

from telemetry.aggregation.handlers.operations cimport OperationsState
from telemetry.aggregation.series cimport CounterCell
from telemetry.aggregation.state cimport CellPair


@cython.locals(cells=CellPair, counter=CounterCell,
               operator_state=OperationsState)
cpdef bint handoff_completed_seen(object state, dict fields, object ts, double now)

@cython.locals(cells=CellPair, counter=CounterCell)
cpdef bint decision_made_seen(object state, dict fields, object ts, double now)

cpdef bint handoff_started_seen(object state, dict fields, object ts, double now)

cpdef bint context_updated_plain(object state, dict fields, object ts, double now)

cpdef bint state_saved_plain(object state, dict fields, object ts, double now)
