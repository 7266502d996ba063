"""What each contract signal does to the aggregates.

* :mod:`~telemetry.aggregation.handlers.table`: :data:`HANDLERS`, the table from signal
  to handler, and :data:`FAST_PATHS` for the most frequent signals;
* :mod:`~telemetry.aggregation.handlers.calls`: the LLM and tool call signals, over one
  cell bundle per (agent, model) or (agent, tool);
* :mod:`~telemetry.aggregation.handlers.operations`: the operator state those handlers
  keep (quiet agents, open tool calls, repeats, loops, workflows in flight) and the
  gauges it fills at collection.

Nothing is imported here: the state (:mod:`telemetry.aggregation.state`) holds the
operations state, and the table updates the state.
"""
