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
    """The alerts in force: ``alerts`` (None: the defaults) + extra - disable.

    Raises ValueError on duplicate names or a disabled name that no alert has.
    """
    chosen = list(DEFAULT_ALERTS if alerts is None else alerts) + list(alerting.extra)
    names = [alert.name for alert in chosen]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"alerts: more than one alert is named {', '.join(duplicates)}")
    unknown = sorted(set(alerting.disable) - set(names))
    if unknown:
        raise ValueError(f"alerting.disable: no alert named {', '.join(unknown)} "
                         f"(alerts: {', '.join(names) or 'none'})")
    return tuple(alert for alert in chosen if alert.name not in alerting.disable)


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
)
