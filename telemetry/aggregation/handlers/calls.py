"""The LLM and tool call signals: their handlers, their fast paths, and the cell bundles
both update.

An LLM call updates up to six cells (calls, duration, input, output and cached input
tokens, cost) and a tool call two, all labelled by the same (agent, model) or (agent,
tool). Looking each up by its own label tuple costs a tuple and a dict lookup per
cell; a bundle (:class:`LlmCells`, :class:`ToolCells`) holds them together, found
with one lookup of the pair. Bundles are remembered in the state like the handoff
pairs (:meth:`~telemetry.aggregation.state.AggregateState.pair`): only for names no
longer than a label and cells that are not the overflow cell, so hostile names cannot
grow the tables and a purge that frees room is seen (it forgets every bundle).

A pair remembered in a table passed the payload check when its bundle was made, so a
later event of the pair (plain ``str`` names) checks only the plain case of its other
fields in line
(:func:`llm_called_seen`, :func:`tool_started_seen`, :func:`tool_completed_seen`);
anything else (an error, a str subclass, an int duration, a new pair) takes the
checked path, the payload check then the handler, which records the same through the
same ``_record_*`` functions. ``tests/unit/aggregation/test_fast_paths.py`` holds them to it.

Open tool calls are kept per agent as (tool, start) in a list the agent keeps while
it is active (emptied, not removed, when its calls close: the next call appends in
place); a tool name longer than a label is kept as its hash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from telemetry.aggregation.handlers.operations import MAX_OPEN_TOOL_CALLS
from telemetry.validation import MAX_NUMBER

if TYPE_CHECKING:
    from telemetry.aggregation.series import CounterCell, HistogramCell, Series
    from telemetry.aggregation.state import AggregateState


class LlmCells:
    """The cells of one (agent, model): made with the four every call updates; the
    cached-input and cost cells are fetched by the first call that has them."""

    __slots__ = ("cached", "calls", "cost", "duration", "input", "output", "provider")

    def __init__(self, state: AggregateState, key: tuple[str, str]) -> None:
        agent, model = key
        tokens = state.llm_tokens
        self.calls: CounterCell = state.llm_calls.cell(key)
        self.duration: HistogramCell = state.llm_duration.cell(key)
        self.input: HistogramCell = tokens.cell((agent, model, "input"))
        self.output: HistogramCell = tokens.cell((agent, model, "output"))
        self.cached: HistogramCell | None = None
        self.cost: CounterCell | None = None
        #: The last provider name that passed its check (a fast path compares identity).
        self.provider: str | None = None


class ToolCells:
    """The cells of one (agent, tool), fetched by its first completion (a start alone
    makes no series), and the tool as the open-call table keeps it."""

    __slots__ = ("calls", "duration", "tool_key")

    def __init__(self, tool_key: str | int) -> None:
        self.calls: CounterCell | None = None
        self.duration: HistogramCell | None = None
        self.tool_key = tool_key


def _remembered(state: AggregateState, table: dict, key: tuple[str, str],
                bundle: LlmCells | ToolCells, *cells: tuple[Series, object]) -> None:
    """Keep ``bundle`` in ``table`` when its names are short and none of ``cells`` (a
    series and its cell) is the overflow cell (see :meth:`AggregateState.pair`)."""
    limit = state.max_label_length
    if (len(table) < 2 * state.max_series and len(key[0]) <= limit and len(key[1]) <= limit
            and not any(series.is_overflow(cell) for series, cell in cells)):
        table[key] = bundle


def _lazy(series: Series, key: tuple, bundle: LlmCells | ToolCells,
          slot: str) -> CounterCell | HistogramCell:
    """The cell ``series.cell(key)``, kept in ``bundle.slot`` unless it is the overflow
    cell (fetched again next time, as the handlers always did). A bundle that is not
    remembered lives for one event only, so keeping a cell in it changes nothing."""
    cell = series.cell(key)
    if not series.is_overflow(cell):
        setattr(bundle, slot, cell)
    return cell


# -- LLM calls ----------------------------------------------------------------------------

def llm_called(state: AggregateState, values: list, ts: float | None, now: float) -> None:
    (agent, model, duration, input_tokens, output_tokens,
     _provider, _operation, cached_input_tokens, cost, error_type) = values
    key = (agent, model)
    cells = state.llm_cells.get(key)
    if cells is None:
        cells = LlmCells(state, key)
        _remembered(state, state.llm_cells, key, cells, (state.llm_calls, cells.calls),
                    (state.llm_duration, cells.duration), (state.llm_tokens, cells.input),
                    (state.llm_tokens, cells.output))
    _record_llm(state, cells, agent, model, duration, input_tokens, output_tokens,
                cached_input_tokens, cost, now, error_type)


def _record_llm(state: AggregateState, cells: LlmCells, agent: str, model: str,
                duration: float, input_tokens: int, output_tokens: int,
                cached_input_tokens: int | None, cost: float | None, now: float,
                error_type: str | None = None) -> None:
    """Record one call in its bundle, its error and cost, and the agent's last event."""
    calls = cells.calls
    calls.value += 1
    calls.updated = now
    cells.duration.observe(duration, now)
    cells.input.observe(float(input_tokens), now)
    cells.output.observe(float(output_tokens), now)
    if cached_input_tokens is not None:
        cached = cells.cached or _lazy(state.llm_tokens, (agent, model, "cached_input"),
                                       cells, "cached")
        cached.observe(float(cached_input_tokens), now)
    if error_type is not None:
        state.llm_errors.cell((agent, model, error_type)).inc(1, now)
    if cost is None:
        ops = state.ops
        cost = ops.cost(model, input_tokens, output_tokens, cached_input_tokens)
    if cost is not None:
        cell = cells.cost or _lazy(state.llm_cost, (agent, model), cells, "cost")
        cell.value += cost
        cell.updated = now
    seen = state.last_seen  # AggregateState.touch, written out
    if agent in seen:
        seen[agent] = now


def llm_called_seen(state: AggregateState, fields: dict, ts: float | None,
                    now: float) -> bool:
    """A remembered (agent, model) without an error: the plain case of the other fields
    checked in line, then :func:`_record_llm`."""
    agent, model = fields.get("agent"), fields.get("model")
    if type(agent) is not str or type(model) is not str:
        return False
    cells = state.llm_cells.get((agent, model))
    if cells is None:
        return False
    duration = fields.get("duration_s")
    input_tokens, output_tokens = fields.get("input_tokens"), fields.get("output_tokens")
    cached, cost = fields.get("cached_input_tokens"), fields.get("cost_usd")
    if (type(duration) is not float or not 0.0 <= duration < MAX_NUMBER
            or type(input_tokens) is not int or not 0 <= input_tokens <= MAX_NUMBER
            or type(output_tokens) is not int or not 0 <= output_tokens <= MAX_NUMBER
            or (cached is not None and (type(cached) is not int
                                       or not 0 <= cached <= MAX_NUMBER))
            or (cost is not None and (type(cost) is not float or not 0.0 <= cost < MAX_NUMBER))
            or fields.get("error_type") is not None):
        return False
    operation, provider = fields.get("operation"), fields.get("provider")
    if operation is not None and (type(operation) is not str or not operation
                                  or operation.isspace()):
        return False
    if provider is not None and provider is not cells.provider:
        if type(provider) is not str or not provider or provider.isspace():
            return False
        if len(provider) <= state.max_label_length:  # no long text kept alive
            cells.provider = provider
    _record_llm(state, cells, agent, model, duration, input_tokens, output_tokens, cached,
                cost, now)
    return True


# -- tool calls ---------------------------------------------------------------------------

def _tool_cells(state: AggregateState, agent: str, tool: str) -> ToolCells:
    key = (agent, tool)
    cells = state.tool_cells.get(key)
    if cells is None:
        cells = ToolCells(state.ops.short(tool))
        _remembered(state, state.tool_cells, key, cells)
    return cells


def tool_started(state: AggregateState, values: list, ts: float | None, now: float) -> None:
    agent, tool, _call_key = values
    ops = state.ops
    key = ops.short(agent)
    calls = ops.open_tools.get(key)
    if calls is None:
        if len(ops.open_tools) >= ops.max_agents:
            ops.drop_closed_tool_calls()
        if len(ops.open_tools) >= ops.max_agents:
            state.count_dropped("operations", "tool_calls_full", now)
        else:
            calls = ops.open_tools[key] = []
    if calls is not None:
        if len(calls) < MAX_OPEN_TOOL_CALLS:
            calls.append((_tool_cells(state, agent, tool).tool_key, now))
        else:
            state.count_dropped("operations", "tool_calls_full", now)
    state.touch(agent, now)


def tool_started_seen(state: AggregateState, fields: dict, ts: float | None,
                      now: float) -> bool:
    """A remembered (agent, tool) whose agent has room in its open-call list."""
    agent, tool = fields.get("agent"), fields.get("tool")
    call_key = fields.get("call_key")
    if (type(agent) is not str or type(tool) is not str
            or (call_key is not None and type(call_key) is not str)):
        return False
    cells = state.tool_cells.get((agent, tool))
    if cells is None:
        return False
    ops = state.ops
    calls = ops.open_tools.get(agent)  # a remembered name is short: its own key
    if calls is None:  # the agent's first call since it was (re)activated
        if len(ops.open_tools) >= ops.max_agents:
            return False  # the checked path makes room or counts the drop
        calls = ops.open_tools[agent] = []
    elif len(calls) >= MAX_OPEN_TOOL_CALLS:
        return False
    calls.append((cells.tool_key, now))
    seen = state.last_seen  # AggregateState.touch, written out
    if agent in seen:
        seen[agent] = now
    return True


def tool_completed(state: AggregateState, values: list, ts: float | None, now: float) -> None:
    agent, tool, duration, call_key, error_type = values
    cells = _tool_cells(state, agent, tool)
    calls = cells.calls or _lazy(state.tool_calls, (agent, tool), cells, "calls")
    histogram = cells.duration or _lazy(state.tool_duration, (agent, tool), cells, "duration")
    _record_tool(state, cells.tool_key, calls, histogram, agent, tool, duration, call_key,
                 now, error_type)


def _record_tool(state: AggregateState, tool_key: str | int, calls: CounterCell,
                 histogram: HistogramCell, agent: str, tool: str, duration: float,
                 call_key: int | None, now: float, error_type: str | None = None) -> None:
    """Count the call, close its open call, and note a repeat (``call_key`` is the
    key's hash)."""
    calls.value += 1
    calls.updated = now
    histogram.observe(duration, now)
    if error_type is not None:
        state.tool_errors.cell((agent, tool, error_type)).inc(1, now)
    ops = state.ops
    open_calls = ops.open_tools.get(agent if len(agent) <= ops.max_label_length
                                    else hash(agent))
    if open_calls:  # close the oldest open call of this tool (none is fine)
        for index, (open_tool, _) in enumerate(open_calls):
            if open_tool == tool_key:
                del open_calls[index]
                break
    if ops.runs.run(agent, tool, call_key) >= ops.repeat_threshold:
        state.tool_repeats.cell((agent, tool)).inc(1, now)
    seen = state.last_seen  # AggregateState.touch, written out
    if agent in seen:
        seen[agent] = now


def tool_completed_seen(state: AggregateState, fields: dict, ts: float | None,
                        now: float) -> bool:
    """A remembered (agent, tool) completed before, without an error."""
    agent, tool = fields.get("agent"), fields.get("tool")
    if type(agent) is not str or type(tool) is not str:
        return False
    cells = state.tool_cells.get((agent, tool))
    if cells is None:
        return False
    calls, histogram = cells.calls, cells.duration
    duration, call_key = fields.get("duration_s"), fields.get("call_key")
    if (calls is None or histogram is None
            or type(duration) is not float or not 0.0 <= duration < MAX_NUMBER
            or (call_key is not None and type(call_key) is not str)
            or fields.get("error_type") is not None):
        return False
    _record_tool(state, cells.tool_key, calls, histogram, agent, tool, duration,
                 None if call_key is None else hash(call_key), now)
    return True
