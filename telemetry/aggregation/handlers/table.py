"""How each contract signal changes the aggregates: :data:`HANDLERS`.

A handler is a plain function ``handler(state, values, timestamp, now)``:

* ``state``: the :class:`~telemetry.aggregation.state.AggregateState` it updates;
* ``values``: the clean values of the signal's required fields, in the order the
  contract (:data:`telemetry.signals.CONTRACT`) lists them, already checked by the
  check derived from that contract (:func:`telemetry.validation.payload_check`);
* ``timestamp``: the event's checked ``timestamp`` (epoch seconds), None when absent;
* ``now``: the aggregator's monotonic time, for staleness.

Handlers run under the aggregator's lock, after the payload has passed its check, so
they only update: an invalid event never reaches them and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from telemetry.aggregation.handlers import calls
from telemetry.aggregation.handlers import operations as ops
from telemetry.aggregation.series import sanitize_label_value
from telemetry.aggregation.state import AggregateState
from telemetry.validation import MAX_NUMBER

#: ``handler(state, values, timestamp, now)``; see the module doc.
Handler = Callable[[AggregateState, list, "float | None", float], None]


def workflow_started(state: AggregateState, values: list, ts: float | None,
                     now: float) -> None:
    state.workflows_started.inc(1, now)
    ops.workflow_started(state, values[0], now)


def workflow_completed(state: AggregateState, values: list, ts: float | None,
                       now: float) -> None:
    workflow_id, duration = values
    state.workflows.cell(("completed",)).inc(1, now)
    state.workflow_duration.cell(("completed",)).observe(duration, now)
    ops.workflow_ended(state, workflow_id)


def workflow_failed(state: AggregateState, values: list, ts: float | None,
                    now: float) -> None:
    workflow_id, duration, _error_type = values
    state.workflows.cell(("failed",)).inc(1, now)
    state.workflow_duration.cell(("failed",)).observe(duration, now)
    ops.workflow_ended(state, workflow_id)


def agent_activated(state: AggregateState, values: list, ts: float | None,
                    now: float) -> None:
    (agent,) = values
    short = len(agent) <= state.max_label_length
    if not short:  # kept capped, like a label
        agent = sanitize_label_value(agent, state.max_label_length)
    active = state.active
    if agent not in active and len(active) < state.max_series:
        active[agent] = now + state.wall_offset if ts is None else ts
    state.agents_active.set(float(len(active)), now)
    if short and agent in active:  # a capped name is not what its events will say
        state.last_seen[agent] = now


def agent_deactivated(state: AggregateState, values: list, ts: float | None,
                      now: float) -> None:
    (agent,) = values
    if len(agent) > state.max_label_length:  # kept capped, like a label
        agent = sanitize_label_value(agent, state.max_label_length)
    since = state.active.pop(agent, None)
    if since is not None:
        until = now + state.wall_offset if ts is None else ts
        state.agent_active_time.cell((agent,)).inc(max(until - since, 0.0), now)
    state.agents_active.set(float(len(state.active)), now)
    ops.agent_deactivated(state, agent)


def handoff_started(state: AggregateState, values: list, ts: float | None,
                    now: float) -> None:
    """Counted in the events total only; the handoff is counted when it completes."""
    from_agent, to_agent = values
    state.touch(from_agent, now)
    state.touch(to_agent, now)


def handoff_completed(state: AggregateState, values: list, ts: float | None,
                      now: float) -> None:
    from_agent, to_agent, duration, workflow_id = values
    key = (from_agent, to_agent)
    cells = state.handoff_cells.get(key) or state.pair(
        state.handoff_cells, key, state.handoffs, state.handoff_duration, key)
    cells.counter.inc(1, now)
    cells.histogram.observe(duration, now)
    state.touch(from_agent, now)
    state.touch(to_agent, now)
    window = state.ops.loops.windows.get(workflow_id)  # the loop check, as the fast path
    limit = state.max_label_length
    if window is None or len(from_agent) > limit or len(to_agent) > limit:
        ops.handoff(state, workflow_id, from_agent, to_agent, now)
    else:
        if to_agent in window:
            state.handoff_loops.cell((to_agent,)).inc(1, now)
        window.append(from_agent)


def decision_made(state: AggregateState, values: list, ts: float | None,
                  now: float) -> None:
    agent, decision_type, duration = values
    key = (agent, decision_type)
    cells = state.decision_cells.get(key) or state.pair(
        state.decision_cells, key, state.decisions, state.decision_duration, (agent,))
    cells.counter.inc(1, now)
    cells.histogram.observe(duration, now)
    state.touch(agent, now)


def error_occurred(state: AggregateState, values: list, ts: float | None,
                   now: float) -> None:
    agent, error_type, _exception = values
    state.errors.cell((agent, error_type)).inc(1, now)
    state.touch(agent, now)


def safety_blocked(state: AggregateState, values: list, ts: float | None,
                   now: float) -> None:
    agent, rule = values
    state.safety_blocks.cell((agent, rule)).inc(1, now)
    state.touch(agent, now)


def context_updated(state: AggregateState, values: list, ts: float | None,
                    now: float) -> None:
    agent, items, tokens = values
    state.context_items.cell((agent,)).set(float(items), now)
    state.context_tokens.cell((agent,)).set(float(tokens), now)
    state.touch(agent, now)


def context_refreshed(state: AggregateState, values: list, ts: float | None,
                      now: float) -> None:
    agent, duration = values
    state.context_refresh_duration.cell((agent,)).observe(duration, now)
    state.touch(agent, now)


def state_saved(state: AggregateState, values: list, ts: float | None, now: float) -> None:
    duration, size = values
    state.state_saves.inc(1, now)
    state.state_save_duration.observe(duration, now)
    state.state_file_size.set(float(size), now)
    state.state_size = size
    state.ops.last_save = now


def state_loaded(state: AggregateState, values: list, ts: float | None, now: float) -> None:
    duration, size = values
    state.state_load_duration.observe(duration, now)
    state.state_file_size.set(float(size), now)
    state.last_load_ms = duration * 1000.0
    state.state_size = size


def mode_changed(state: AggregateState, values: list, ts: float | None, now: float) -> None:
    (mode,) = values
    ops.mode_changed(state, mode, now)
    state.mode_series.cell((state.mode,)).set(0.0, now)
    state.mode_series.cell((mode,)).set(1.0, now)
    state.mode = mode


# -- the common case of the most frequent signals ---------------------------------------
# A pair of names seen before is in the state's cell table, so it passed the checks
# then; only the duration is left to check. Skipping the payload check and the handler
# this way takes handoff_completed from 1.23x to 0.87x a bare blinker send
# (benchmarks/per_event.py): without it the per-event target (1.0x) is not met.
#
# The other frequent signals of the reference workflow (each about a ninth of its
# events) check their fields' plain case in line and call their handler: the payload
# check's call and loop are a tenth of an event's cost in a running workflow
# (benchmarks/overhead.py). Anything else (a str subclass, a blank name, an int
# duration, a missing field) returns False and takes the checked path, which cleans
# it or names the problem. tests/unit/aggregation/test_fast_paths.py holds every fast path
# to the checked path's result.
#
# Names are looked up in the cell tables only when they are plain ``str`` (a subclass
# could hash or compare as it likes), and the few calls a fast path would make per
# event (``CounterCell.inc``, ``AggregateState.touch``) are written out: each costs
# about 3 % of a handoff's recording, and together with record()'s timestamp check
# they are 11.6 % of the handoff's per-event figure (benchmarks/per_event.py).

#: ``fast_path(state, fields, timestamp, now) -> bool``: records the event and returns
#: True in the common case; returns False, having changed nothing, when the event needs
#: the checked path (the payload check, then the handler). ``timestamp`` is the checked
#: ``timestamp`` field, as handlers get it.
FastPath = Callable[[AggregateState, dict, "float | None", float], bool]


def handoff_completed_seen(state: AggregateState, fields: dict, ts: float | None,
                           now: float) -> bool:
    from_agent, to_agent = fields.get("from_agent"), fields.get("to_agent")
    duration = fields.get("duration_s")
    if (type(from_agent) is not str or type(to_agent) is not str
            or type(duration) is not float or not 0.0 <= duration < MAX_NUMBER):
        return False
    cells = state.handoff_cells.get((from_agent, to_agent))
    workflow_id = fields.get("workflow_id")  # checked by the receiver; a subclass: slow path
    if cells is None or (workflow_id is not None and type(workflow_id) is not str):
        return False
    # The cells' and the state's updates written out (CounterCell.inc,
    # AggregateState.touch): names of a remembered pair are short, so they are table
    # keys as they are.
    counter = cells.counter
    counter.value += 1
    counter.updated = now
    cells.histogram.observe(duration, now)
    seen = state.last_seen
    if from_agent in seen:
        seen[from_agent] = now
    if to_agent in seen:
        seen[to_agent] = now
    operator_state = state.ops
    window = operator_state.loops.windows.get(workflow_id)
    if window is None:  # a new workflow, or a long id (kept as its hash)
        ops.handoff(state, workflow_id, from_agent, to_agent, now)
    else:
        if to_agent in window:
            state.handoff_loops.cell((to_agent,)).inc(1, now)
        window.append(from_agent)
    return True


def decision_made_seen(state: AggregateState, fields: dict, ts: float | None,
                       now: float) -> bool:
    agent, decision_type = fields.get("agent"), fields.get("decision_type")
    duration = fields.get("duration_s")
    if (type(agent) is not str or type(decision_type) is not str
            or type(duration) is not float or not 0.0 <= duration < MAX_NUMBER):
        return False
    cells = state.decision_cells.get((agent, decision_type))
    if cells is None:
        return False
    counter = cells.counter  # written out as in handoff_completed_seen
    counter.value += 1
    counter.updated = now
    cells.histogram.observe(duration, now)
    seen = state.last_seen
    if agent in seen:
        seen[agent] = now
    return True


def handoff_started_seen(state: AggregateState, fields: dict, ts: float | None,
                         now: float) -> bool:
    """A pair that completed a handoff before: its names passed the checks then, and
    a start records nothing but the event and the agents' last-event times."""
    from_agent, to_agent = fields.get("from_agent"), fields.get("to_agent")
    if (type(from_agent) is not str or type(to_agent) is not str
            or (from_agent, to_agent) not in state.handoff_cells):
        return False
    seen = state.last_seen  # AggregateState.touch, written out
    if from_agent in seen:
        seen[from_agent] = now
    if to_agent in seen:
        seen[to_agent] = now
    return True


def _agent_plain(handler: Handler) -> FastPath:
    """The fast path of a signal whose one field is ``agent``: a plain name, then
    ``handler``."""
    def plain(state: AggregateState, fields: dict, ts: float | None, now: float) -> bool:
        agent = fields.get("agent")
        if type(agent) is not str or not agent or agent.isspace():
            return False
        handler(state, (agent,), ts, now)
        return True
    plain.__name__ = f"{handler.__name__}_plain"
    return plain


agent_activated_plain = _agent_plain(agent_activated)
agent_deactivated_plain = _agent_plain(agent_deactivated)


def context_updated_plain(state: AggregateState, fields: dict, ts: float | None,
                          now: float) -> bool:
    agent, items, tokens = fields.get("agent"), fields.get("items"), fields.get("tokens")
    if (type(agent) is not str or not agent or agent.isspace()
            or type(items) is not int or not 0 <= items <= MAX_NUMBER
            or type(tokens) is not int or not 0 <= tokens <= MAX_NUMBER):
        return False
    context_updated(state, (agent, items, tokens), ts, now)
    return True


def state_saved_plain(state: AggregateState, fields: dict, ts: float | None,
                      now: float) -> bool:
    duration, size = fields.get("duration_s"), fields.get("size_bytes")
    if (type(duration) is not float or not 0.0 <= duration < MAX_NUMBER
            or type(size) is not int or not 0 <= size <= MAX_NUMBER):
        return False
    state_saved(state, (duration, size), ts, now)
    return True


#: Signal name -> its fast path, for the signals that have one.
FAST_PATHS: dict[str, FastPath] = {
    "yolo.handoff_completed": handoff_completed_seen,
    "yolo.decision_made": decision_made_seen,
    "yolo.handoff_started": handoff_started_seen,
    "yolo.agent_activated": agent_activated_plain,
    "yolo.agent_deactivated": agent_deactivated_plain,
    "yolo.context_updated": context_updated_plain,
    "yolo.state_saved": state_saved_plain,
    "yolo.llm_called": calls.llm_called_seen,
    "yolo.tool_started": calls.tool_started_seen,
    "yolo.tool_completed": calls.tool_completed_seen,
}

#: The signals whose handlers observe a histogram: only their sends read the span an
#: exemplar links to (tests/unit/tracing/test_exemplars.py holds it to the handlers).
OBSERVES_HISTOGRAM = frozenset({
    "yolo.workflow_completed", "yolo.workflow_failed", "yolo.handoff_completed",
    "yolo.decision_made", "yolo.context_refreshed", "yolo.state_saved", "yolo.state_loaded",
    "yolo.llm_called", "yolo.tool_completed",
})

#: Signal name -> its handler; every signal of the contract has one.
HANDLERS: dict[str, Handler] = {
    "yolo.workflow_started": workflow_started,
    "yolo.workflow_completed": workflow_completed,
    "yolo.workflow_failed": workflow_failed,
    "yolo.agent_activated": agent_activated,
    "yolo.agent_deactivated": agent_deactivated,
    "yolo.handoff_started": handoff_started,
    "yolo.handoff_completed": handoff_completed,
    "yolo.decision_made": decision_made,
    "yolo.error_occurred": error_occurred,
    "yolo.safety_blocked": safety_blocked,
    "yolo.context_updated": context_updated,
    "yolo.context_refreshed": context_refreshed,
    "yolo.state_saved": state_saved,
    "yolo.state_loaded": state_loaded,
    "yolo.mode_changed": mode_changed,
    "yolo.llm_called": calls.llm_called,
    "yolo.tool_started": calls.tool_started,
    "yolo.tool_completed": calls.tool_completed,
}
