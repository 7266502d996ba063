# In a compiled build, the fast paths of the most frequent signals take the send's
# keyword arguments as the dict they are and the cells as the C structures they are
# (series.pxd, state.pxd), so their reads and updates need no method or attribute
# lookup. The pure-Python build ignores this file; both builds behave the same.
cimport cython

from telemetry.aggregation.handlers.operations cimport OperationsState
from telemetry.aggregation.series cimport CounterCell
from telemetry.aggregation.state cimport AggregateState, CellPair


@cython.locals(cells=CellPair, counter=CounterCell,
               operator_state=OperationsState)
cpdef bint handoff_completed_seen(AggregateState state, dict fields, object ts, double now)

@cython.locals(cells=CellPair, counter=CounterCell)
cpdef bint decision_made_seen(AggregateState state, dict fields, object ts, double now)

cpdef bint handoff_started_seen(AggregateState state, dict fields, object ts, double now)

cpdef bint context_updated_plain(AggregateState state, dict fields, object ts, double now)

cpdef bint state_saved_plain(AggregateState state, dict fields, object ts, double now)

# The handlers, with the state as the C structure it is (the fast paths above call
# some of them from C).
cpdef workflow_started(AggregateState state, object values, object ts, double now)
cpdef workflow_completed(AggregateState state, object values, object ts, double now)
cpdef workflow_failed(AggregateState state, object values, object ts, double now)
@cython.locals(active=dict)
cpdef agent_activated(AggregateState state, object values, object ts, double now)
cpdef agent_deactivated(AggregateState state, object values, object ts, double now)
cpdef handoff_started(AggregateState state, object values, object ts, double now)
cpdef handoff_completed(AggregateState state, object values, object ts, double now)
cpdef decision_made(AggregateState state, object values, object ts, double now)
cpdef error_occurred(AggregateState state, object values, object ts, double now)
cpdef safety_blocked(AggregateState state, object values, object ts, double now)
cpdef context_updated(AggregateState state, object values, object ts, double now)
cpdef context_refreshed(AggregateState state, object values, object ts, double now)
cpdef state_saved(AggregateState state, object values, object ts, double now)
cpdef state_loaded(AggregateState state, object values, object ts, double now)
cpdef mode_changed(AggregateState state, object values, object ts, double now)
