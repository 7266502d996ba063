"""Alert definitions in the config: defaults, replacement, extra/disable, validation."""

from __future__ import annotations

import pytest

from telemetry import ConfigError, load_config
from telemetry.alerting.builtins import DEFAULT_ALERTS, effective_alerts
from telemetry.alerting.definitions import AlertDefinition, format_duration, parse_duration

SIMPLE = {"name": "Mine", "metric": "yolo_errors_total", "kind": "rate", "window": "1m",
          "threshold": 1, "summary": "errors"}


def in_force(data: dict) -> list[str]:
    config = load_config(data, environ={})
    return [alert.name for alert in effective_alerts(config.alerts, config.alerting)]


def test_null_means_the_defaults_including_the_two_from_the_story() -> None:
    assert in_force({}) == [alert.name for alert in DEFAULT_ALERTS]
    by_name = {alert.name: alert for alert in DEFAULT_ALERTS}
    errors = by_name["HighErrorRate"]
    assert (errors.spec.prometheus_name, errors.kind, errors.window_s, errors.threshold,
            errors.for_) == ("yolo_errors_total", "rate", 300.0, 0.1, 300.0)
    context = by_name["ContextOverflow"]
    assert (context.spec.prometheus_name, context.kind, context.threshold, context.for_,
            context.by) == ("yolo_context_tokens", "value", 9000.0, 60.0, ("agent",))
    assert {"HandoffLatencyHigh", "WorkflowFailureRatio", "SafetyBlockSurge", "StateSaveSlow",
            "TelemetryExporterFailing", "TelemetryInvalidEvents",
            "TelemetryDroppingItems"} <= set(by_name)


def test_a_list_replaces_the_defaults_and_extra_adds_to_them() -> None:
    assert in_force({"alerts": [SIMPLE]}) == ["Mine"]
    assert in_force({"alerts": []}) == []
    assert in_force({"alerting": {"extra": [SIMPLE]}})[-1] == "Mine"
    assert len(in_force({"alerting": {"extra": [SIMPLE]}})) == len(DEFAULT_ALERTS) + 1


def test_disable_removes_by_name_and_rejects_unknown_names() -> None:
    names = in_force({"alerting": {"disable": ["SafetyBlockSurge", "StateSaveSlow"]}})
    assert "SafetyBlockSurge" not in names and "StateSaveSlow" not in names
    assert len(names) == len(DEFAULT_ALERTS) - 2
    with pytest.raises(ConfigError, match=r"alerting\.disable: no alert named Nope"):
        load_config({"alerting": {"disable": ["Nope"]}}, environ={})


def test_an_extra_alert_replaces_a_disabled_one_of_its_name() -> None:
    """Other budgets for a built-in: disable it and add one of the same name."""
    config = load_config({"alerting": {"disable": ["AgentStalled"], "extra": [
        {**SIMPLE, "name": "AgentStalled"}]}}, environ={})
    alerts = effective_alerts(config.alerts, config.alerting)
    assert [a.name for a in alerts].count("AgentStalled") == 1
    assert alerts[-1].name == "AgentStalled" and alerts[-1].metric == "yolo_errors_total"


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="more than one alert is named HighErrorRate"):
        load_config({"alerting": {"extra": [{**SIMPLE, "name": "HighErrorRate"}]}},
                    environ={})


@pytest.mark.parametrize(("change", "message"), [
    ({"metric": "yolo_nope_total"}, "alerts.0.metric: no metric 'yolo_nope_total'"),
    ({"by": ["agent", "rule"]}, "by: yolo_errors_total has no label rule"),
    ({"match": {"outcome": "failed"}}, "match: yolo_errors_total has no label outcome"),
    ({"metric": "yolo.context.tokens"}, "yolo.context.tokens is a gauge; rates need a counter"),
    ({"window": None}, "kind rate needs a window"),
    ({"kind": "value"}, "kind value takes no window"),
    ({"kind": "quantile"}, "yolo.errors is not a histogram"),
    ({"kind": "quantile", "metric": "yolo.handoff.duration"}, "needs quantile"),
    ({"kind": "ratio"}, "numerator and denominator are the same series"),
    ({"denominator": "yolo.decisions"}, "denominator applies to kind ratio only"),
    ({"aggregate": "sum"}, "aggregate applies to kinds value and age only"),
    ({"window": "5 minutes"}, "expected a duration"),
    ({"for": -1}, "zero or more seconds"),
    ({"severity": "page"}, "alerts.0.severity"),
    ({"name": "has space"}, "alerts.0.name"),
    ({"summary": "{{ $labels.agent }}"}, "names label 'agent', which is not in by"),
    ({"summary": "{{ .Labels.agent }}"}, "unsupported template action"),
    ({"description": "{{ $value "}, "unbalanced"),
    ({"surprise": 1}, "alerts.0.surprise: no such key"),
])
def test_invalid_definitions_name_the_key_and_the_problem(change: dict, message: str) -> None:
    definition = {**SIMPLE, **change}
    definition = {k: v for k, v in definition.items() if v is not None}
    with pytest.raises(ConfigError) as raised:
        load_config({"alerts": [definition]}, environ={})
    assert message in str(raised.value)


def test_every_kind_accepts_a_consistent_definition() -> None:
    ratio = AlertDefinition.model_validate({
        "name": "R", "metric": "yolo.errors", "kind": "ratio", "denominator": "yolo.decisions",
        "window": 60, "threshold": 0.5, "by": ["agent"], "summary": "{{ $labels.agent }}"})
    assert ratio.denominator_spec.prometheus_name == "yolo_decisions_total"
    quantile = AlertDefinition.model_validate({
        "name": "Q", "metric": "yolo_handoff_duration_seconds", "kind": "quantile",
        "quantile": 0.99, "window": "2m", "threshold": 5, "by": ["from_agent"],
        "summary": "{{ $value | humanizeDuration }}", "for": "1h30m"})
    assert (quantile.window_s, quantile.for_) == (120.0, 5400.0)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("2d", 172800.0), ("500ms", 0.5),
    ("1w", 604800.0), (90, 90.0), (0.25, 0.25), ("45", 45.0),
])
def test_durations_read_prometheus_spelling_and_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (10, "10s"), (300, "5m"), (5400, "1h30m"), (90061, "1d1h1m1s"), (0.5, "500ms"),
])
def test_durations_are_written_the_way_prometheus_reads_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_the_default_config_file_keeps_the_built_in_alerts() -> None:
    config = load_config("config/telemetry.yaml", environ={})
    assert config.alerts is None
    assert config.alerting.enabled and not config.alerting.webhook.enabled
    assert config.alerting.evaluation_interval_s == 15
