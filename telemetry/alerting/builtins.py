"""The built-in alerts, and which alerts are in force for a config.

Each is documented, with what to do when it fires, in docs/monitoring.md
("Alerts"); the generated rules are config/prometheus/yolo-alerts.yml.
"""

from __future__ import annotations

from typing import Any

from telemetry import catalogue as cat
from telemetry.alerting.definitions import AlertDefinition, AlertingConfig


def effective_alerts(alerts: list[AlertDefinition] | None,
                     alerting: AlertingConfig) -> tuple[AlertDefinition, ...]:
    """The alerts in force: ``alerts`` (None: the defaults) - disable + extra.

    An ``extra`` alert named like a disabled one replaces it (other budgets for a
    built-in). Raises ValueError on duplicate names or a disabled name that no alert
    has.
    """
    base = list(DEFAULT_ALERTS if alerts is None else alerts)
    extra = list(alerting.extra)
    known = [alert.name for alert in base + extra]
    unknown = sorted(set(alerting.disable) - set(known))
    if unknown:
        raise ValueError(f"alerting.disable: no alert named {', '.join(unknown)} "
                         f"(alerts: {', '.join(known) or 'none'})")
    chosen = [alert for alert in base if alert.name not in alerting.disable] + extra
    names = [alert.name for alert in chosen]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"alerts: more than one alert is named {', '.join(duplicates)}")
    return tuple(chosen)


def _default(**fields: Any) -> AlertDefinition:
    return AlertDefinition.model_validate(fields)


#: The built-in alerts (documented in docs/monitoring.md, "Alerts").
DEFAULT_ALERTS: tuple[AlertDefinition, ...] = (
    _default(
        name="HighErrorRate", metric=cat.ERRORS.name, kind="rate", window="5m",
        threshold=0.1, **{"for": "5m"}, severity="critical",
        summary="Agents raise {{ $value | humanize }} errors/s",
        description="More than 0.1 agent errors per second over 5 minutes, for 5 minutes."),
    _default(
        name="ContextOverflow", metric=cat.CONTEXT_TOKENS.name, kind="value", aggregate="max",
        threshold=9000, **{"for": "1m"}, by=["agent"], severity="critical",
        summary="Agent {{ $labels.agent }} holds {{ $value | humanize }} context tokens",
        description="The agent's context has stayed above 9000 tokens for 1 minute; "
                    "it is close to the model's limit and needs a refresh."),
    _default(
        name="HandoffLatencyHigh", metric=cat.HANDOFF_DURATION.name, kind="quantile",
        quantile=0.95, window="5m", threshold=30, **{"for": "10m"}, severity="warning",
        summary="Handoff p95 latency is {{ $value | humanizeDuration }}",
        description="95% of handoffs over 5 minutes took up to this long; above 30s "
                    "for 10 minutes."),
    _default(
        name="WorkflowFailureRatio", metric=cat.WORKFLOWS.name, kind="ratio",
        match={"outcome": "failed"}, window="15m", threshold=0.2, **{"for": "10m"},
        severity="warning",
        summary="{{ $value | humanizePercentage }} of workflows fail",
        description="More than 20% of the workflows finished over 15 minutes failed, "
                    "for 10 minutes."),
    _default(
        name="SafetyBlockSurge", metric=cat.SAFETY_BLOCKS.name, kind="rate", window="5m",
        threshold=0.05, **{"for": "5m"}, severity="warning",
        summary="Safety rules block {{ $value | humanize }} actions/s",
        description="More than 3 actions a minute stopped by safety rules over 5 minutes, "
                    "for 5 minutes."),
    _default(
        name="StateSaveSlow", metric=cat.STATE_SAVE_DURATION.name, kind="quantile",
        quantile=0.95, window="10m", threshold=1.0, **{"for": "10m"}, severity="warning",
        summary="State save p95 is {{ $value | humanizeDuration }}",
        description="95% of state saves over 10 minutes took up to this long; above 1s "
                    "for 10 minutes."),
    _default(
        name="TelemetryExporterFailing", metric=cat.EXPORTER_ERRORS.name, kind="rate",
        window="5m", threshold=0, **{"for": "5m"}, by=["exporter"], severity="warning",
        summary="Telemetry exporter {{ $labels.exporter }} is failing",
        description="The exporter has failed exports for 5 minutes; its backend is down "
                    "or misconfigured (see /health)."),
    _default(
        name="TelemetryInvalidEvents", metric=cat.INVALID_EVENTS.name, kind="rate",
        window="5m", threshold=0, **{"for": "5m"}, by=["signal"], severity="warning",
        summary="Invalid {{ $labels.signal }} events are being dropped",
        description="The orchestrator keeps sending events with missing or invalid fields; "
                    "they are dropped and counted."),
    _default(
        name="TelemetryDroppingItems", metric=cat.DROPPED.name, kind="rate", window="5m",
        threshold=0, **{"for": "5m"}, by=["component"], severity="warning",
        summary="Telemetry {{ $labels.component }} is dropping items",
        description="A queue is full or a backend is unreachable; telemetry data is lost."),
    _default(
        name="TelemetrySeriesOverflow", metric=cat.SERIES_OVERFLOW.name, kind="rate",
        window="5m", threshold=0, **{"for": "5m"}, by=["metric"], severity="warning",
        summary="{{ $labels.metric }} hit its label-set limit",
        description="New label sets go to the __overflow__ series; a label has too many "
                    "values or limits.max_series_per_metric is too low."),
    # -- agent operations: ages are seconds since a timestamp (time() - metric), so the
    # threshold is the budget itself and no ``for`` is needed.
    _default(
        name="AgentStalled", metric=cat.AGENT_LAST_EVENT.name, kind="age", threshold=300,
        unless=[{"metric": cat.AGENT_TOOL_CALL_STARTED.name}],
        **{"or": [{"metric": cat.AGENT_TOOL_CALL_STARTED.name, "kind": "age",
                   "threshold": 1800}]},
        by=["agent"], severity="warning",
        summary="Agent {{ $labels.agent }} has been silent for {{ $value | humanizeDuration }}",
        description="The agent is active but has sent nothing for over 5 minutes between "
                    "calls, or has been inside one tool call for over 30 minutes."),
    _default(
        name="HandoffLoop", metric=cat.HANDOFF_LOOPS.name, kind="increase", window="10m",
        comparison=">=", threshold=3, by=["agent"], severity="warning",
        summary="Work keeps coming back to agent {{ $labels.agent }} "
                "({{ $value | humanize }} loops)",
        description="Three or more handoffs in 10 minutes returned work to an agent the "
                    "workflow had left within its last operations.loop_window handoffs: "
                    "agents are passing work in a cycle."),
    _default(
        name="ToolCallRepeating", metric=cat.TOOL_CALL_REPEATS.name, kind="increase",
        window="10m", threshold=0, by=["agent", "tool"], severity="warning",
        summary="Agent {{ $labels.agent }} repeats the same {{ $labels.tool }} call",
        description="The agent made the same tool call (same call_key) "
                    "operations.repeat_threshold or more times in a row in the last "
                    "10 minutes."),
    _default(
        name="WorkflowStuck", metric=cat.WORKFLOW_OLDEST_START.name, kind="age",
        threshold=3600, severity="warning",
        summary="The oldest workflow in flight started {{ $value | humanizeDuration }} ago",
        description="A workflow has been in flight for over an hour without completing or "
                    "failing."),
    _default(
        name="ModeStuckPaused", metric=cat.MODE_CHANGED.name, kind="age", threshold=1800,
        **{"and": [{"metric": cat.MODE.name, "match": {"mode": "paused"}, "comparison": "==",
                    "threshold": 1}]},
        severity="warning",
        summary="The orchestrator has been paused for {{ $value | humanizeDuration }}",
        description="The orchestrator entered mode paused over 30 minutes ago and has not "
                    "left it."),
    _default(
        name="StateNotSaved", metric=cat.STATE_LAST_SAVE.name, kind="age", threshold=900,
        **{"and": [{"metric": cat.WORKFLOWS_IN_FLIGHT.name, "threshold": 0}]},
        severity="warning",
        summary="State was last saved {{ $value | humanizeDuration }} ago",
        description="Workflows are in flight and the orchestrator's state has not been "
                    "saved for over 15 minutes: a crash now loses that work."),
    _default(
        name="TokenBudgetBurn", metric=cat.LLM_TOKEN_USAGE.name, kind="increase",
        histogram_value="sum", match={"token_type": ["input", "output"]}, window="1h",
        threshold=5_000_000,
        **{"or": [{"metric": cat.LLM_COST.name, "kind": "increase", "window": "1h",
                   "threshold": 25}]},
        by=["agent"], severity="warning",
        summary="Agent {{ $labels.agent }} is over its hourly LLM budget "
                "({{ $value | humanize }} tokens or USD in an hour)",
        description="The agent used more than 5M input and output tokens, or more than "
                    "25 USD, over the last hour."),
)
