"""Agent operations: the operator state derived from the signals (the handlers of the
LLM and tool call signals are in :mod:`telemetry.aggregation.handlers.calls`).

What an operator of agents asks and no counter answers: which agent has gone quiet
(and whether it is inside a tool call, where quiet is expected for longer), which
workflow has been in flight too long, whether handoffs go round in circles, whether
an agent keeps making the same tool call. :class:`OperationsState` keeps the few
plain values that answer them, updated in O(1) per event with bounded memory:

* ``last_seen``: active agent -> monotonic time of its last event (every event that
  names it as ``agent``, ``from_agent`` or ``to_agent``); an entry exists from
  activation to deactivation, so it is bounded like the active agents (an agent
  whose name is longer than a label is not tracked: its events could only be matched
  to its capped name at a cost every event would pay);
* ``open_tools``: agent -> its open tool calls (tool, start), at most
  :data:`MAX_OPEN_TOOL_CALLS` per agent; an agent's list stays, empty, once its calls
  have closed (:mod:`telemetry.aggregation.handlers.calls` appends to it in place);
* ``runs`` (:class:`CallRuns`): agent -> (hash of (tool, call_key), run length) of its
  last completed tool call, for repeats; a call_key itself is never kept (only its hash);
* ``loops`` (:class:`HandoffWindows`): workflow -> the last ``loop_window`` agents a
  handoff left, for loops (one anonymous workflow for handoffs without a ``workflow_id``);
* ``in_flight``: workflow_id -> start; mode time; the last state save.

Every table is capped; a name longer than a label is kept as its hash, so hostile
input costs neither memory nor a label. Times are the aggregator's monotonic clock;
:func:`fill_gauges` turns them into the epoch-second gauges (``time() - x`` is the
age) once per collection, with one monotonic-to-wall offset.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from telemetry import catalogue as cat
from telemetry.signals import MODES

if TYPE_CHECKING:
    from telemetry.aggregation.series import Series
    from telemetry.aggregation.state import AggregateState

#: Open tool calls remembered per agent; one more is counted as dropped.
MAX_OPEN_TOOL_CALLS = 64

#: Model -> USD per token of (input, output, cached input); None: cached input
#: tokens cost the input price.
Prices = Mapping[str, tuple[float, float, "float | None"]]


class HandoffWindows:
    """Per workflow, the last ``size`` agents a handoff left: a handoff to one of them
    returns to it (a loop). At most ``max_workflows`` windows: the one whose first
    handoff is oldest is forgotten first (``evicted`` counts them); names longer than
    ``max_length`` are kept as their hash."""

    def __init__(self, size: int, max_workflows: int, max_length: int) -> None:
        self.size = size
        self.max_workflows = max_workflows
        self.max_length = max_length
        #: workflow (None: handoffs without a workflow_id) -> its window.
        self.windows: dict[str | int | None, deque[str | int]] = {}
        self.evicted = 0

    def returns_to(self, workflow_id: str | None, from_agent: str, to_agent: str) -> bool:
        """Note a handoff; whether ``to_agent`` is in the workflow's window."""
        limit = self.max_length
        key_from = from_agent if len(from_agent) <= limit else hash(from_agent)
        key_to = to_agent if len(to_agent) <= limit else hash(to_agent)
        window = self.window(workflow_id)
        loop = key_to in window
        window.append(key_from)
        return loop

    def window(self, workflow_id: str | None) -> deque[str | int]:
        """The workflow's window, made when new (after forgetting the oldest if full)."""
        key = workflow_id if workflow_id is None or len(workflow_id) <= self.max_length \
            else hash(workflow_id)
        window = self.windows.get(key)
        if window is None:
            windows = self.windows
            if len(windows) >= self.max_workflows:
                del windows[next(iter(windows))]
                self.evicted += 1
            window = windows[key] = deque(maxlen=self.size)
        return window

    def forget(self, workflow_id: str) -> None:
        key = workflow_id if len(workflow_id) <= self.max_length else hash(workflow_id)
        self.windows.pop(key, None)


class CallRuns:
    """Per agent, the fingerprint of its last completed tool call (hash of the tool and
    the call_key's hash) and how many identical calls in a row it ends. At most
    ``max_agents`` agents; names longer than ``max_length`` are kept as their hash,
    and a call_key is never kept at all."""

    def __init__(self, max_agents: int, max_length: int) -> None:
        self.max_agents = max_agents
        self.max_length = max_length
        self.last: dict[str | int, tuple[int, int]] = {}

    def run(self, agent: str, tool: str, call_key: int | None) -> int:
        """Note a call; the length of the run of identical calls it ends (0 without a
        call_key: nothing to compare, and the run is broken)."""
        key = agent if len(agent) <= self.max_length else hash(agent)
        last = self.last
        if call_key is None:
            last.pop(key, None)
            return 0
        fingerprint = hash((tool, call_key))
        previous = last.get(key)
        run = previous[1] + 1 if previous is not None and previous[0] == fingerprint else 1
        if previous is not None or len(last) < self.max_agents:
            last[key] = (fingerprint, run)
        return run

    def forget(self, agent: str) -> None:
        self.last.pop(agent if len(agent) <= self.max_length else hash(agent), None)


class OperationsState:
    """The operator state of one aggregator (see the module doc)."""

    def __init__(self, *, max_agents: int, max_label_length: int, loop_window: int = 4,
                 repeat_threshold: int = 3, max_workflows_in_flight: int = 10000,
                 prices: Prices | None = None, now: float = 0.0) -> None:
        self.max_agents = max_agents
        self.max_label_length = max_label_length
        self.loop_window = loop_window
        self.repeat_threshold = repeat_threshold
        self.max_workflows = max_workflows_in_flight
        self.prices: dict[str, tuple[float, float, float | None]] = dict(prices or {})
        self.last_seen: dict[str, float] = {}
        self.open_tools: dict[str | int, list[tuple[str | int, float]]] = {}
        self.runs = CallRuns(max_agents, max_label_length)
        self.loops = HandoffWindows(loop_window, max_workflows_in_flight, max_label_length)
        self.in_flight: dict[str | int, float] = {}
        self.mode_time: dict[str, float] = dict.fromkeys(MODES, 0.0)
        self.mode_since = now
        self.last_save: float | None = None

    def reset(self, now: float) -> None:
        """Forget everything (a fresh aggregator); the current mode starts ``now``."""
        for table in (self.last_seen, self.open_tools, self.runs.last, self.loops.windows,
                      self.in_flight):
            table.clear()
        self.mode_time = dict.fromkeys(MODES, 0.0)
        self.mode_since = now
        self.last_save = None

    def drop_closed_tool_calls(self) -> None:
        """Forget the agents whose tool calls have all closed (the table is full)."""
        for agent in [agent for agent, calls in self.open_tools.items() if not calls]:
            del self.open_tools[agent]

    def short(self, name: str) -> str | int:
        """``name`` as a table key: itself, or its hash when longer than a label."""
        return name if len(name) <= self.max_label_length else hash(name)

    def cost(self, model: str, input_tokens: int, output_tokens: int,
             cached_input_tokens: int | None) -> float | None:
        """The price table's cost of a call, None for a model it does not list."""
        price = self.prices.get(model)
        if price is None:
            return None
        per_input, per_output, per_cached = price
        cached = min(cached_input_tokens or 0, input_tokens)
        if per_cached is None:
            per_cached = per_input
        return (input_tokens - cached) * per_input + cached * per_cached + \
            output_tokens * per_output


# -- per-event updates (under the aggregator's lock) ----------------------------------

def handoff(state: AggregateState, workflow_id: str | None, from_agent: str, to_agent: str,
            now: float) -> None:
    """Count a loop when ``to_agent`` is one of the last agents the workflow left (the
    handoff fast path does the same in line)."""
    loops = state.ops.loops
    if loops.returns_to(workflow_id, from_agent, to_agent):
        state.handoff_loops.cell((to_agent,)).inc(1, now)
    if loops.evicted:
        state.dropped.cell(("operations", "loop_window_evicted")).inc(loops.evicted, now)
        loops.evicted = 0


def workflow_started(state: AggregateState, workflow_id: str, now: float) -> None:
    ops = state.ops
    key = ops.short(workflow_id)
    if key not in ops.in_flight:
        if len(ops.in_flight) >= ops.max_workflows:
            state.count_dropped("operations", "workflows_in_flight_full", now)
            return
        ops.in_flight[key] = now


def workflow_ended(state: AggregateState, workflow_id: str) -> None:
    ops = state.ops
    ops.in_flight.pop(ops.short(workflow_id), None)
    ops.loops.forget(workflow_id)


def agent_deactivated(state: AggregateState, agent: str) -> None:
    ops = state.ops
    ops.last_seen.pop(agent, None)
    ops.open_tools.pop(ops.short(agent), None)
    ops.runs.forget(agent)


def mode_changed(state: AggregateState, mode: str, now: float) -> None:
    """Add the time spent in the mode being left (before ``state.mode`` changes)."""
    ops = state.ops
    if mode != state.mode:
        ops.mode_time[state.mode] += max(now - ops.mode_since, 0.0)
        ops.mode_since = now


# -- at collection ----------------------------------------------------------------------

def fill_gauges(state: AggregateState, now: float, wall_offset: float) -> None:
    """Set the operator gauges from the state (under the aggregator's lock).

    ``wall_offset`` is wall time minus the monotonic clock, taken once per collection:
    monotonic time ``t`` was epoch second ``t + wall_offset``.
    """
    ops, series = state.ops, state.series
    _rebuild(series[cat.AGENT_LAST_EVENT],
             ((agent, seen + wall_offset) for agent, seen in ops.last_seen.items()), now)
    _rebuild(series[cat.AGENT_TOOL_CALL_STARTED],
             ((_label(agent), calls[0][1] + wall_offset)
              for agent, calls in ops.open_tools.items() if calls), now)
    series[cat.WORKFLOWS_IN_FLIGHT].cell(()).set(float(len(ops.in_flight)), now)
    oldest = min(ops.in_flight.values(), default=None)
    series[cat.WORKFLOW_OLDEST_START].cell(()).set(
        0.0 if oldest is None else oldest + wall_offset, now)
    mode_time = series[cat.MODE_TIME]
    for mode, spent in ops.mode_time.items():
        if mode == state.mode:
            spent += max(now - ops.mode_since, 0.0)
        cell = mode_time.cell((mode,))
        cell.value, cell.updated = spent, now
    series[cat.MODE_CHANGED].cell(()).set(ops.mode_since + wall_offset, now)
    series[cat.STATE_LAST_SAVE].cell(()).set(
        0.0 if ops.last_save is None else ops.last_save + wall_offset, now)


def _label(agent: str | int) -> str:
    """An agent key as a label: a hashed (too long) name shows as its hash."""
    return agent if isinstance(agent, str) else f"#{agent & 0xFFFFFFFFFFFFFFFF:016x}"


def _rebuild(series: Series, values: Iterable[tuple[str, float]], now: float) -> None:
    """Replace a per-agent gauge's series by ``values``: a series exists only while
    its agent is in the table. The cells are kept while the agents are the same."""
    fresh = {(agent,): value for agent, value in values}
    if series.cells.keys() != fresh.keys():
        series.clear()
    for key, value in fresh.items():
        series.cell(key).set(value, now)
