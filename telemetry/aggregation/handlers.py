"""How each contract signal changes the aggregator's cells.

:class:`SignalHandlers` is the table from signal name to handler method, and the
handlers; :class:`~telemetry.aggregation.aggregator.Aggregator` mixes it in and provides what
they update (the series and cells, the active-agent table, the mode). A handler
runs under the aggregator's lock, gets the payload dict and the monotonic time, and
validates everything before its first update, so an invalid event changes nothing
(:class:`~telemetry.validation.InvalidEvent` names the field and the reason).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from telemetry import validation as check

if TYPE_CHECKING:
    from telemetry.aggregation.series import Series


class SignalHandlers:
    """The per-signal updates; see the module doc for what the host class provides."""

    HANDLERS: dict[str, str] = {
        "yolo.workflow_started": "_on_workflow_started",
        "yolo.workflow_completed": "_on_workflow_completed",
        "yolo.workflow_failed": "_on_workflow_failed",
        "yolo.agent_activated": "_on_agent_activated",
        "yolo.agent_deactivated": "_on_agent_deactivated",
        "yolo.handoff_started": "_on_handoff_started",
        "yolo.handoff_completed": "_on_handoff_completed",
        "yolo.decision_made": "_on_decision_made",
        "yolo.error_occurred": "_on_error_occurred",
        "yolo.safety_blocked": "_on_safety_blocked",
        "yolo.context_updated": "_on_context_updated",
        "yolo.context_refreshed": "_on_context_refreshed",
        "yolo.state_saved": "_on_state_saved",
        "yolo.state_loaded": "_on_state_loaded",
        "yolo.mode_changed": "_on_mode_changed",
    }

    def _on_workflow_started(self, f: dict, now: float) -> None:
        check.name(f, "workflow_id")
        check.optional_name(f, "workflow_type")
        self._workflows_started.inc(1, now)

    def _finish_workflow(self, outcome: str, duration: float, now: float) -> None:
        self._workflows.cell((outcome,)).inc(1, now)
        self._workflow_duration.cell((outcome,)).observe(duration, now)

    def _on_workflow_completed(self, f: dict, now: float) -> None:
        check.name(f, "workflow_id")
        self._finish_workflow("completed", check.duration(f), now)

    def _on_workflow_failed(self, f: dict, now: float) -> None:
        check.name(f, "workflow_id")
        check.name(f, "error_type")
        self._finish_workflow("failed", check.duration(f), now)

    def _on_agent_activated(self, f: dict, now: float) -> None:
        agent = f.get("agent")
        if type(agent) is not str or not agent or agent.isspace():
            agent = check.name(f, "agent")
        ts = f.get("timestamp")  # already checked by the receiver
        active = self._active
        if agent not in active and len(active) < self.max_series:
            active[agent] = time.time() if ts is None else float(ts)
        gauge = self._agents_active
        gauge.value, gauge.updated = float(len(active)), now

    def _on_agent_deactivated(self, f: dict, now: float) -> None:
        agent = f.get("agent")
        if type(agent) is not str or not agent or agent.isspace():
            agent = check.name(f, "agent")
        since = self._active.pop(agent, None)
        if since is not None:
            ts = f.get("timestamp")
            ts = time.time() if ts is None else float(ts)
            active_time = self._agent_active_time
            cell = active_time.route.get((agent,)) or active_time.admit((agent,))
            cell.value += max(ts - since, 0.0)
            cell.updated = now
        gauge = self._agents_active
        gauge.value, gauge.updated = float(len(self._active)), now

    def _on_handoff_started(self, f: dict, now: float) -> None:
        source, target = f.get("from_agent"), f.get("to_agent")
        if type(source) is not str or not source or source.isspace():
            check.name(f, "from_agent")
        if type(target) is not str or not target or target.isspace():
            check.name(f, "to_agent")

    # The hottest handlers inline Series.cell(), CounterCell.inc() and the common case
    # of the name checks: a raw label tuple already in a series' route table passed
    # the checks when it was first seen, so only a miss runs them.

    def _on_handoff_completed(self, f: dict, now: float) -> None:
        key = (f.get("from_agent"), f.get("to_agent"))
        try:
            cells = self._handoff_cells.get(key)
        except TypeError:  # an unhashable value: the checks below name it
            cells = None
        if cells is None:
            key = (check.name(f, "from_agent"), check.name(f, "to_agent"))
        duration = f.get("duration_s")
        if type(duration) is not float or not 0.0 <= duration < check.MAX_NUMBER:
            duration = check.duration(f)
        if cells is None:
            cells = self._pair(self._handoff_cells, key, self._handoffs, key,
                               self._handoff_duration, key)
        counter, histogram = cells
        counter.value += 1
        counter.updated = now
        histogram.observe(duration, now)

    def _on_decision_made(self, f: dict, now: float) -> None:
        key = (f.get("agent"), f.get("decision_type"))
        try:
            cells = self._decision_cells.get(key)
        except TypeError:  # an unhashable value: the checks below name it
            cells = None
        if cells is None:
            key = (check.name(f, "agent"), check.name(f, "decision_type"))
        duration = f.get("duration_s")
        if type(duration) is not float or not 0.0 <= duration < check.MAX_NUMBER:
            duration = check.duration(f)
        if cells is None:
            cells = self._pair(self._decision_cells, key, self._decisions, key,
                               self._decision_duration, key[:1])
        counter, histogram = cells
        counter.value += 1
        counter.updated = now
        histogram.observe(duration, now)

    def _pair(self, table: dict, key: tuple, counters: Series, counter_key: tuple,
              histograms: Series, histogram_key: tuple) -> tuple:
        """The (counter, histogram) cells one event updates, remembered by raw label
        values unless either is an overflow cell (a later purge may free room)."""
        cells = (counters.cell(counter_key), histograms.cell(histogram_key))
        if (len(table) < 2 * self.max_series and not counters.is_overflow(cells[0])
                and not histograms.is_overflow(cells[1])):
            table[key] = cells
        return cells

    def _on_error_occurred(self, f: dict, now: float) -> None:
        agent = check.name(f, "agent")
        error_type = check.name(f, "error_type")
        check.exception(f)
        self._errors.cell((agent, error_type)).inc(1, now)

    def _on_safety_blocked(self, f: dict, now: float) -> None:
        key = (check.name(f, "agent"), check.name(f, "rule"))
        self._safety_blocks.cell(key).inc(1, now)

    def _on_context_updated(self, f: dict, now: float) -> None:
        agent = (f.get("agent"),)
        items_series, tokens_series = self._context_items, self._context_tokens
        try:
            items_cell = items_series.route.get(agent)
        except TypeError:  # an unhashable value: the checks below name it
            items_cell = None
        if items_cell is None:
            agent = (check.name(f, "agent"),)
        items, tokens = f.get("items"), f.get("tokens")
        if type(items) is not int or not 0 <= items <= check.MAX_NUMBER:
            items = check.count(f, "items")
        if type(tokens) is not int or not 0 <= tokens <= check.MAX_NUMBER:
            tokens = check.count(f, "tokens")
        if items_cell is None:
            items_cell = items_series.route.get(agent) or items_series.admit(agent)
        items_cell.value, items_cell.updated = float(items), now
        tokens_cell = tokens_series.route.get(agent) or tokens_series.admit(agent)
        tokens_cell.value, tokens_cell.updated = float(tokens), now

    def _on_context_refreshed(self, f: dict, now: float) -> None:
        agent = check.name(f, "agent")
        self._context_refresh_duration.cell((agent,)).observe(check.duration(f), now)

    def _on_state_saved(self, f: dict, now: float) -> None:
        duration, size = f.get("duration_s"), f.get("size_bytes")
        if type(duration) is not float or not 0.0 <= duration < check.MAX_NUMBER:
            duration = check.duration(f)
        if type(size) is not int or not 0 <= size <= check.MAX_NUMBER:
            size = check.count(f, "size_bytes")
        saves, file_size = self._state_saves, self._state_file_size
        saves.value += 1
        saves.updated = now
        self._state_save_duration.observe(duration, now)
        file_size.value, file_size.updated = float(size), now
        self._state_size = size

    def _on_state_loaded(self, f: dict, now: float) -> None:
        duration = check.duration(f)
        size = check.count(f, "size_bytes")
        self._state_load_duration.observe(duration, now)
        self._state_file_size.set(float(size), now)
        self._last_load_ms = duration * 1000.0
        self._state_size = size

    def _on_mode_changed(self, f: dict, now: float) -> None:
        mode = check.mode(f)
        self._mode_series.cell((self._mode,)).set(0.0, now)
        self._mode_series.cell((mode,)).set(1.0, now)
        self._mode = mode
