"""The dashboard's "Agent operations" row: LLM and tool calls, stalls, loops, stuck work.

Budgets and ages read the way the alerts read them: tokens and cost per hour (the
TokenBudgetBurn budgets as lines), seconds since a timestamp (``time() - x``, with
the AgentStalled, WorkflowStuck, StateNotSaved and ModeStuckPaused budgets as
lines), loops per 10 minutes (HandoffLoop's line).
"""

from __future__ import annotations

from collections.abc import Sequence

from telemetry import catalogue as cat
from telemetry.alerting.definitions import AlertDefinition
from telemetry.artefacts.panels import (
    FILTER,
    RATE,
    PanelDef,
    Query,
    describe,
    quantile,
    rate,
    reading_thresholds,
    selector,
)

HOUR_S, LOOP_WINDOW_S = 3600.0, 600.0
_IO_TOKENS = 'token_type=~"input|output"'


def _age(spec: cat.MetricSpec, by: str, how: str = "max") -> str:
    """Seconds since a timestamp, per ``by``; a 0 timestamp (none) has no age."""
    return f"time() - {how} by ({by}) ({selector(spec)} > 0)"


def _per_hour(expr: str) -> str:
    return f"{expr} * 3600"


def operations_row(alerts: Sequence[AlertDefinition]) -> tuple[str, list[PanelDef]]:
    """The row's title and panels."""
    io_tokens = f"{cat.LLM_TOKEN_USAGE.prometheus_name}_sum{{{FILTER}, {_IO_TOKENS}}}"
    tokens = f"sum by (agent, model) (rate({io_tokens}[{RATE}]))"
    cached = rate(cat.LLM_TOKEN_USAGE, ["agent", "model"], "_sum", token_type="cached_input")
    ages = (reading_thresholds(alerts, cat.AGENT_LAST_EVENT, "age")
            + reading_thresholds(alerts, cat.AGENT_TOOL_CALL_STARTED, "age"))
    saved_and_mode = (reading_thresholds(alerts, cat.STATE_LAST_SAVE, "age")
                      + reading_thresholds(alerts, cat.MODE_CHANGED, "age"))
    return ("Agent operations", [
        PanelDef("Tokens per hour by agent and model",
                 "Input and output tokens, at the rate of the last interval, per hour; "
                 "cached input is part of input and shown apart. The line is the "
                 "TokenBudgetBurn budget per agent. " + describe(cat.LLM_TOKEN_USAGE),
                 "short",
                 (Query(_per_hour(tokens), "{{agent}} {{model}}"),
                  Query(_per_hour(cached), "{{agent}} {{model}} cached input")),
                 thresholds=reading_thresholds(alerts, cat.LLM_TOKEN_USAGE, "increase",
                                               HOUR_S)),
        PanelDef("LLM cost per hour by agent and model",
                 "The line is the TokenBudgetBurn cost budget per agent. " +
                 describe(cat.LLM_COST), "currencyUSD",
                 (Query(_per_hour(rate(cat.LLM_COST, ["agent", "model"])),
                        "{{agent}} {{model}}"),),
                 thresholds=reading_thresholds(alerts, cat.LLM_COST, "increase", HOUR_S)),
        PanelDef("LLM calls and errors by agent", describe(cat.LLM_CALLS, cat.LLM_ERRORS),
                 "ops",
                 (Query(rate(cat.LLM_CALLS, ["agent"]), "{{agent}} calls"),
                  Query(rate(cat.LLM_ERRORS, ["agent", "error_type"]),
                        "{{agent}} {{error_type}}"))),
        PanelDef("LLM call latency p95 by model", describe(cat.LLM_CALL_DURATION), "s",
                 (Query(quantile(0.95, cat.LLM_CALL_DURATION, ["model"]), "{{model}}"),)),
        PanelDef("Tool calls and errors by tool", describe(cat.TOOL_CALLS, cat.TOOL_ERRORS),
                 "ops",
                 (Query(rate(cat.TOOL_CALLS, ["tool"]), "{{tool}} calls"),
                  Query(rate(cat.TOOL_ERRORS, ["tool", "error_type"]),
                        "{{tool}} {{error_type}}"))),
        PanelDef("Tool call latency p95 by tool", describe(cat.TOOL_CALL_DURATION), "s",
                 (Query(quantile(0.95, cat.TOOL_CALL_DURATION, ["tool"]), "{{tool}}"),)),
        PanelDef("Time since last event per agent",
                 "Active agents only. Between calls the lower line (AgentStalled's idle "
                 "budget) applies; inside a tool call the call's own age and the higher "
                 "line. " + describe(cat.AGENT_LAST_EVENT, cat.AGENT_TOOL_CALL_STARTED), "s",
                 (Query(_age(cat.AGENT_LAST_EVENT, "agent"), "{{agent}}"),
                  Query(_age(cat.AGENT_TOOL_CALL_STARTED, "agent", "min"),
                        "{{agent}} in a tool call")),
                 thresholds=ages, no_value="no active agent"),
        PanelDef("Handoff loops and repeated tool calls per 10 minutes",
                 "The line is HandoffLoop's threshold. " +
                 describe(cat.HANDOFF_LOOPS, cat.TOOL_CALL_REPEATS), "short",
                 (Query(f"sum by (agent) (increase({selector(cat.HANDOFF_LOOPS)}[10m]))",
                        "loops back to {{agent}}"),
                  Query(f"sum by (agent, tool) "
                        f"(increase({selector(cat.TOOL_CALL_REPEATS)}[10m]))",
                        "{{agent}} repeats {{tool}}")),
                 thresholds=reading_thresholds(alerts, cat.HANDOFF_LOOPS, "increase",
                                               LOOP_WINDOW_S), no_value="0"),
        PanelDef("Oldest workflow in flight",
                 "How long the oldest workflow still running has been in flight, and how "
                 "many are. The line is WorkflowStuck's budget. " +
                 describe(cat.WORKFLOW_OLDEST_START, cat.WORKFLOWS_IN_FLIGHT), "s",
                 (Query(_age(cat.WORKFLOW_OLDEST_START, "instance", "min"),
                        "oldest {{instance}}"),),
                 thresholds=reading_thresholds(alerts, cat.WORKFLOW_OLDEST_START, "age"),
                 no_value="none in flight"),
        PanelDef("Workflows in flight", describe(cat.WORKFLOWS_IN_FLIGHT), "short",
                 (Query(f"max by (instance) ({selector(cat.WORKFLOWS_IN_FLIGHT)})",
                        "{{instance}}"),)),
        PanelDef("Time since last state save and mode change",
                 "The lines are StateNotSaved's and ModeStuckPaused's budgets. " +
                 describe(cat.STATE_LAST_SAVE, cat.MODE_CHANGED), "s",
                 (Query(_age(cat.STATE_LAST_SAVE, "instance"), "last save {{instance}}"),
                  Query(_age(cat.MODE_CHANGED, "instance"), "mode changed {{instance}}")),
                 thresholds=saved_and_mode),
        PanelDef("Share of time per mode", describe(cat.MODE_TIME) +
                 " Shown as the share of wall time in each mode.", "percentunit",
                 (Query(rate(cat.MODE_TIME, ["mode"]), "{{mode}}"),)),
    ])
