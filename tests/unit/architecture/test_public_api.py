"""The public API, written out: a change to any of it fails here first.

What an orchestrator, a plugin author or an operator codes against: ``telemetry.__all__``,
the signal contract, the exporter plugin interface, the metric names of the catalogue
and the command line. Each table below is the expected value, spelled out by hand and
compared with the code; a deliberate change edits the table in the same commit.
"""

from __future__ import annotations

import argparse
import inspect
from importlib.metadata import entry_points

import pytest

import exporters
import telemetry
from exporters import Exporter, ExporterConfig
from exporters.prometheus import to_metric_family
from telemetry import catalogue as cat
from telemetry import signals
from telemetry.cli.main import build_parser
from telemetry.model import Family
from telemetry.plugins import discover

# -- telemetry ------------------------------------------------------------------------


def test_telemetry_exports_exactly_these_names() -> None:
    assert sorted(telemetry.__all__) == [
        "AgentMetrics", "ConfigError", "DurationSummary", "SystemMetrics", "Telemetry",
        "TelemetryConfig", "load_config", "package_version", "profiled", "signals", "start",
        "timed",
    ]
    for name in telemetry.__all__:
        assert getattr(telemetry, name) is not None


# -- the signal contract ----------------------------------------------------------------

#: signal -> (required fields, optional fields), each field with the kind it is checked as.
CONTRACT = {
    "yolo.workflow_started": ({"workflow_id": "name"}, {"workflow_type": "name"}),
    "yolo.workflow_completed": ({"workflow_id": "name", "duration_s": "duration"}, {}),
    "yolo.workflow_failed": (
        {"workflow_id": "name", "duration_s": "duration", "error_type": "name"}, {}),
    "yolo.agent_activated": ({"agent": "name"}, {}),
    "yolo.agent_deactivated": ({"agent": "name"}, {}),
    "yolo.handoff_started": ({"from_agent": "name", "to_agent": "name"}, {}),
    "yolo.handoff_completed": (
        {"from_agent": "name", "to_agent": "name", "duration_s": "duration"},
        {"workflow_id": "name"}),
    "yolo.decision_made": (
        {"agent": "name", "decision_type": "name", "duration_s": "duration"}, {}),
    "yolo.error_occurred": ({"agent": "name", "error_type": "name"}, {"exception": "exception"}),
    "yolo.safety_blocked": ({"agent": "name", "rule": "name"}, {}),
    "yolo.context_updated": ({"agent": "name", "items": "count", "tokens": "count"}, {}),
    "yolo.context_refreshed": ({"agent": "name", "duration_s": "duration"}, {}),
    "yolo.state_saved": ({"duration_s": "duration", "size_bytes": "count"}, {}),
    "yolo.state_loaded": ({"duration_s": "duration", "size_bytes": "count"}, {}),
    "yolo.mode_changed": ({"mode": "mode"}, {}),
    "yolo.llm_called": (
        {"agent": "name", "model": "name", "duration_s": "duration", "input_tokens": "count",
         "output_tokens": "count"},
        {"provider": "name", "operation": "name", "cached_input_tokens": "count",
         "cost_usd": "amount", "error_type": "name"}),
    "yolo.tool_started": ({"agent": "name", "tool": "name"}, {"call_key": "key"}),
    "yolo.tool_completed": (
        {"agent": "name", "tool": "name", "duration_s": "duration"},
        {"call_key": "key", "error_type": "name"}),
}


def test_the_signal_contract_is_this_table() -> None:
    found = {spec.name: (dict(spec.required), dict(spec.optional))
             for spec in signals.CONTRACT}
    assert found == CONTRACT
    assert [spec.name for spec in signals.CONTRACT] == list(CONTRACT)  # no signal twice


def test_the_modes_are_these() -> None:
    assert tuple(signals.MODES) == ("active", "paused", "degraded", "stopped")


def test_every_contract_signal_is_a_module_attribute() -> None:
    for name in CONTRACT:
        assert getattr(signals, name.removeprefix("yolo.")).name == name


# -- the exporter plugin interface ------------------------------------------------------


def test_exporters_exports_exactly_these_names() -> None:
    assert sorted(exporters.__all__) == [
        "ENTRY_POINT_GROUP", "Exporter", "ExporterConfig", "ExporterStatus", "PeriodicWorker",
        "discover",
    ]


def test_the_entry_point_group_is_yolo_telemetry_exporters() -> None:
    assert exporters.ENTRY_POINT_GROUP == "yolo_telemetry.exporters"


def _parameters(function: object) -> list[tuple[str, str, object]]:
    return [(p.name, p.kind.name, p.default)
            for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


EMPTY = inspect.Parameter.empty

#: Method -> its parameters (name, kind, default): what a plugin overrides or calls.
EXPORTER_METHODS = {
    "__init__": [("self", "POSITIONAL_OR_KEYWORD", EMPTY),
                 ("config", "POSITIONAL_OR_KEYWORD", EMPTY),
                 ("aggregator", "POSITIONAL_OR_KEYWORD", EMPTY),
                 ("telemetry", "POSITIONAL_OR_KEYWORD", EMPTY)],
    "start": [("self", "POSITIONAL_OR_KEYWORD", EMPTY)],
    "flush": [("self", "POSITIONAL_OR_KEYWORD", EMPTY),
              ("timeout_s", "POSITIONAL_OR_KEYWORD", 5.0)],
    "stop": [("self", "POSITIONAL_OR_KEYWORD", EMPTY),
             ("timeout_s", "POSITIONAL_OR_KEYWORD", 5.0)],
    "health": [("self", "POSITIONAL_OR_KEYWORD", EMPTY)],
}


def test_the_exporter_interface_has_these_methods_and_signatures() -> None:
    public = sorted(name for name, value in vars(Exporter).items() if inspect.isfunction(value)
                    and (not name.startswith("_") or name == "__init__"))
    assert public == sorted(EXPORTER_METHODS)
    for name, parameters in EXPORTER_METHODS.items():
        assert _parameters(getattr(Exporter, name)) == parameters, name


def test_the_exporter_class_attributes_are_these() -> None:
    assert Exporter.name == "exporter"
    assert Exporter.Config is ExporterConfig
    assert Exporter.instance_id == ""


def test_an_exporter_config_has_enabled_and_forbids_unknown_keys() -> None:
    assert list(ExporterConfig.model_fields) == ["enabled"]
    assert ExporterConfig.model_fields["enabled"].default is False
    assert ExporterConfig.model_config.get("extra") == "forbid"


#: Entry-point name -> (its target, the keys of its config section).
BUILT_IN_EXPORTERS = {
    "prometheus": ("exporters.prometheus:PrometheusExporter", ["enabled"]),
    "otlp": ("exporters.otlp:OtlpExporter", [
        "enabled", "endpoint", "headers", "interval_s", "metrics", "metrics_endpoint",
        "metrics_headers", "metrics_protocol", "metrics_timeout_s", "protocol",
        "temporality_preference", "timeout_s", "traces", "traces_endpoint", "traces_headers",
        "traces_protocol", "traces_timeout_s"]),
    "statsd": ("exporters.statsd:StatsdExporter", [
        "enabled", "flavor", "flush_interval_s", "host", "max_backoff_s",
        "max_datagrams_per_s", "max_packet_bytes", "max_pending_lines", "merge_timer_values",
        "port", "prefix", "protocol", "reservoir_size", "send_all_gauges", "timeout_s"]),
}


def test_the_built_in_exporters_are_registered_under_their_names() -> None:
    registered = {entry.name: entry.value
                  for entry in entry_points(group="yolo_telemetry.exporters")}
    assert registered == {name: target for name, (target, _) in BUILT_IN_EXPORTERS.items()}
    found = discover()
    for name, (_, keys) in BUILT_IN_EXPORTERS.items():
        cls = found[name]
        assert issubclass(cls, Exporter) and cls.name == name
        assert issubclass(cls.Config, ExporterConfig)
        assert sorted(cls.Config.model_fields) == keys, name


# -- the catalogue ----------------------------------------------------------------------

#: Canonical name -> (kind, unit, labels, Prometheus name, Prometheus unit).
CATALOGUE = {
    "yolo.handoffs": ("counter", "{handoff}", ("from_agent", "to_agent"),
                      "yolo_handoffs_total", ""),
    "yolo.handoff.duration": ("histogram", "s", ("from_agent", "to_agent"),
                              "yolo_handoff_duration_seconds", "seconds"),
    "yolo.decisions": ("counter", "{decision}", ("agent", "decision_type"),
                       "yolo_decisions_total", ""),
    "yolo.decision.duration": ("histogram", "s", ("agent",),
                               "yolo_decision_duration_seconds", "seconds"),
    "yolo.errors": ("counter", "{error}", ("agent", "error_type"), "yolo_errors_total", ""),
    "yolo.safety_blocks": ("counter", "{block}", ("agent", "rule"),
                           "yolo_safety_blocks_total", ""),
    "yolo.agents.active": ("gauge", "{agent}", (), "yolo_agents_active", ""),
    "yolo.agent.active": ("counter", "s", ("agent",), "yolo_agent_active_seconds_total",
                          "seconds"),
    "yolo.context.items": ("gauge", "{item}", ("agent",), "yolo_context_items", ""),
    "yolo.context.tokens": ("gauge", "{token}", ("agent",), "yolo_context_tokens", ""),
    "yolo.context.refresh.duration": ("histogram", "s", ("agent",),
                                      "yolo_context_refresh_duration_seconds", "seconds"),
    "yolo.workflows.started": ("counter", "{workflow}", (), "yolo_workflows_started_total", ""),
    "yolo.workflows": ("counter", "{workflow}", ("outcome",), "yolo_workflows_total", ""),
    "yolo.workflow.duration": ("histogram", "s", ("outcome",),
                               "yolo_workflow_duration_seconds", "seconds"),
    "yolo.state.saves": ("counter", "{save}", (), "yolo_state_saves_total", ""),
    "yolo.state.save.duration": ("histogram", "s", (), "yolo_state_save_duration_seconds",
                                 "seconds"),
    "yolo.state.load.duration": ("histogram", "s", (), "yolo_state_load_duration_seconds",
                                 "seconds"),
    "yolo.state.file.size": ("gauge", "By", (), "yolo_state_file_size_bytes", "bytes"),
    "yolo.mode": ("gauge", "1", ("mode",), "yolo_mode", ""),
    "yolo.operation.duration": ("histogram", "s", ("operation",),
                                "yolo_operation_duration_seconds", "seconds"),
    "yolo.process.memory.resident": ("gauge", "By", (), "yolo_process_memory_resident_bytes",
                                     "bytes"),
    "yolo.process.cpu": ("gauge", "%", (), "yolo_process_cpu_percent", "percent"),
    "yolo.llm.calls": ("counter", "{call}", ('agent', 'model'),
        "yolo_llm_calls_total", ""),
    "yolo.llm.errors": ("counter", "{error}", ('agent', 'model', 'error_type'),
        "yolo_llm_errors_total", ""),
    "yolo.llm.call.duration": ("histogram", "s", ('agent', 'model'),
        "yolo_llm_call_duration_seconds", "seconds"),
    "yolo.llm.token.usage": ("histogram", "{token}", ('agent', 'model', 'token_type'),
        "yolo_llm_token_usage", ""),
    "yolo.llm.cost": ("counter", "{USD}", ('agent', 'model'),
        "yolo_llm_cost_usd_total", ""),
    "yolo.tool.calls": ("counter", "{call}", ('agent', 'tool'),
        "yolo_tool_calls_total", ""),
    "yolo.tool.errors": ("counter", "{error}", ('agent', 'tool', 'error_type'),
        "yolo_tool_errors_total", ""),
    "yolo.tool.call.duration": ("histogram", "s", ('agent', 'tool'),
        "yolo_tool_call_duration_seconds", "seconds"),
    "yolo.tool.call.repeats": ("counter", "{call}", ('agent', 'tool'),
        "yolo_tool_call_repeats_total", ""),
    "yolo.handoff.loops": ("counter", "{loop}", ('agent',),
        "yolo_handoff_loops_total", ""),
    "yolo.agent.last_event.timestamp": ("gauge", "s", ('agent',),
        "yolo_agent_last_event_timestamp_seconds", "seconds"),
    "yolo.agent.tool_call.started.timestamp": ("gauge", "s", ('agent',),
        "yolo_agent_tool_call_started_timestamp_seconds", "seconds"),
    "yolo.workflows.in_flight": ("gauge", "{workflow}", (),
        "yolo_workflows_in_flight", ""),
    "yolo.workflow.oldest_start.timestamp": ("gauge", "s", (),
        "yolo_workflow_oldest_start_timestamp_seconds", "seconds"),
    "yolo.mode.time": ("counter", "s", ('mode',),
        "yolo_mode_seconds_total", "seconds"),
    "yolo.mode.changed.timestamp": ("gauge", "s", (),
        "yolo_mode_changed_timestamp_seconds", "seconds"),
    "yolo.state.last_save.timestamp": ("gauge", "s", (),
        "yolo_state_last_save_timestamp_seconds", "seconds"),
    "yolo.alerts.firing": ("gauge", "{alert}", ("alertname", "severity"),
                           "yolo_alerts_firing", ""),
    "yolo.telemetry.events": ("counter", "{event}", ("signal",),
                              "yolo_telemetry_events_total", ""),
    "yolo.telemetry.invalid_events": ("counter", "{event}", ("signal", "reason"),
                                      "yolo_telemetry_invalid_events_total", ""),
    "yolo.telemetry.exporter.errors": ("counter", "{error}", ("exporter",),
                                       "yolo_telemetry_exporter_errors_total", ""),
    "yolo.telemetry.dropped": ("counter", "{item}", ("component", "reason"),
                               "yolo_telemetry_dropped_total", ""),
    "yolo.telemetry.spans.exported": ("counter", "{span}", (),
                                      "yolo_telemetry_spans_exported_total", ""),
    "yolo.telemetry.series_overflow": ("counter", "{update}", ("metric",),
                                       "yolo_telemetry_series_overflow_total", ""),
    "yolo.telemetry.handler": ("counter", "s", (), "yolo_telemetry_handler_seconds_total",
                               "seconds"),
}


def test_the_catalogue_is_this_table_in_this_order() -> None:
    found = {spec.name: (spec.kind.value, spec.unit, spec.labels, spec.prometheus_name,
                         spec.prometheus_unit) for spec in cat.CATALOGUE}
    assert found == CATALOGUE
    assert [spec.name for spec in cat.CATALOGUE] == list(CATALOGUE)


#: Metrics a semantic convention names over OTLP -> (name, attributes, constant ones).
OTLP_CONVENTIONS = {
    "yolo.llm.call.duration": ("gen_ai.client.operation.duration",
                               ("gen_ai.agent.name", "gen_ai.request.model"),
                               (("gen_ai.operation.name", "chat"),)),
    "yolo.llm.token.usage": ("gen_ai.client.token.usage",
                             ("gen_ai.agent.name", "gen_ai.request.model", "gen_ai.token.type"),
                             (("gen_ai.operation.name", "chat"),)),
}


def test_the_otlp_names_are_the_catalogue_names_but_these() -> None:
    found = {spec.name: (spec.otlp_name, spec.otlp_attributes, spec.otlp_constant_attributes)
             for spec in cat.CATALOGUE if spec.otlp is not None}
    assert found == OTLP_CONVENTIONS
    for spec in cat.CATALOGUE:
        if spec.otlp is None:
            assert (spec.otlp_name, spec.otlp_attributes) == (spec.name, spec.labels)


@pytest.mark.parametrize("spec", cat.CATALOGUE, ids=lambda spec: spec.name)
def test_the_exposition_carries_the_catalogue_name_and_unit(spec: cat.MetricSpec) -> None:
    metric = to_metric_family(Family(spec, ()))
    assert metric.unit == spec.prometheus_unit
    suffix = "_total" if spec.kind is cat.Kind.COUNTER else ""
    assert metric.name + suffix == spec.prometheus_name


# -- the command line -------------------------------------------------------------------


def _options(parser: argparse.ArgumentParser) -> dict[str, tuple]:
    """Each argument's destination -> (its option strings, its choices sorted)."""
    return {action.dest: (tuple(action.option_strings),
                          tuple(sorted(action.choices)) if action.choices else None)
            for action in parser._actions
            if not isinstance(action, argparse._SubParsersAction)}


HELP = ("-h", "--help")

#: Subcommand (None: the top level) -> its arguments.
COMMAND_LINE = {
    None: {"help": (HELP, None), "version": (("--version",), None),
           "verbose": (("-v", "--verbose"), None)},
    "demo": {"help": (HELP, None), "config": (("--config", "-c"), None),
             "duration": (("--duration",), None), "workflows": (("--workflows",), None),
             "seed": (("--seed",), None), "time_scale": (("--time-scale",), None),
             "port": (("--port",), None), "quiet": (("--quiet", "-q"), None),
             "linger": (("--linger",), None), "snapshot_file": (("--snapshot-file",), None),
             "incident": (("--incident",), ("context", "errors", "loop", "slow-handoffs", "stall",
                                            "tokens")),
             "incident_after": (("--incident-after",), None),
             "incident_for": (("--incident-for",), None),
             "write_rules": (("--write-rules",), None)},
    "check-config": {"help": (HELP, None), "file": ((), None)},
    "profile": {"help": (HELP, None), "url": ((), None), "seconds": (("--seconds", "-s"), None),
                "format": (("--format", "-f"), ("collapsed", "html", "speedscope", "text")),
                "threads": (("--threads",), ("all", "orchestrator")),
                "output": (("--output", "-o"), None), "token": (("--token",), None),
                "user": (("--user",), None), "cafile": (("--cafile",), None)},
    "render": {"help": (HELP, None),
               "what": ((), ("alert-table", "alerts", "dashboard", "metrics")),
               "config": (("--config", "-c"), None), "output": (("--output", "-o"), None)},
    "top": {"help": (HELP, None), "urls": ((), None), "prometheus": (("--prometheus",), None),
            "once": (("--once",), None), "json": (("--json",), None),
            "interval": (("--interval",), None), "timeout": (("--timeout",), None),
            "instance": (("--instance",), None), "filter": (("--filter",), None),
            "idle_budget": (("--idle-budget",), None),
            "tool_budget": (("--tool-budget",), None), "token": (("--token",), None),
            "user": (("--user",), None), "cafile": (("--cafile",), None)},
    "watch-bmad": {"help": (HELP, None), "dir": ((), None),
                   "config": (("--config", "-c"), None), "interval": (("--interval",), None),
                   "once": (("--once",), None), "roles": (("--roles",), None),
                   "port": (("--port",), None)},
}


def test_the_command_line_has_these_subcommands_and_options() -> None:
    parser = build_parser()
    [subcommands] = [action for action in parser._actions
                     if isinstance(action, argparse._SubParsersAction)]
    assert list(subcommands.choices) == [name for name in COMMAND_LINE if name is not None]
    assert _options(parser) == COMMAND_LINE[None]
    for name, subparser in subcommands.choices.items():
        assert _options(subparser) == COMMAND_LINE[name], name


def test_the_installed_command_is_the_parser_s_program() -> None:
    [script] = [entry for entry in entry_points(group="console_scripts")
                if entry.name == "yolo-telemetry"]
    assert script.value == "telemetry.cli.main:main"
    assert build_parser().prog == "yolo-telemetry"
