"""The Grafana dashboard, generated from the catalogue with grafana-foundation-sdk.

``yolo-telemetry render dashboard`` writes it (``config/grafana/yolo-overview.json``
is the committed copy). Every query spells metrics through the catalogue, and the
threshold lines come from the alert definitions in force, so the dashboard, the
alert rules and the exposition cannot disagree on a name or a limit.

Variables: ``datasource`` (any Prometheus), ``job`` and ``instance`` (multi-select,
"All" by default). Queries sum across the selected instances where a total makes
sense (rates, ratios, quantiles) and keep ``instance`` where it does not (memory,
CPU, state size).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from telemetry import catalogue as cat
from telemetry.alerting.definitions import AlertDefinition
from telemetry.artefacts.operations import operations_row
from telemetry.artefacts.panels import (
    FILTER,
    RATE,
    PanelDef,
    Query,
    describe,
    percentiles,
    quantile,
    rate,
    ratio,
    selector,
    thresholds,
)

UID = "yolo-overview"
TITLE = "YOLO orchestrator"


def panel_rows(alerts: Sequence[AlertDefinition]) -> list[tuple[str, list[PanelDef]]]:
    """Every row and panel of the dashboard, in order."""
    failed_ratio = ratio(rate(cat.WORKFLOWS, outcome="failed"), rate(cat.WORKFLOWS))
    errors_by_agent = rate(cat.ERRORS, ["agent"])
    error_ratio = (f"{errors_by_agent} / ({errors_by_agent} + "
                   f"{rate(cat.DECISIONS, ['agent'])})")
    firing_prometheus = (f'sum by (alertname, severity) '
                         f'(ALERTS{{alertstate="firing", {FILTER}}})')
    return [
        ("Overview", [
            PanelDef("Active agents", describe(cat.AGENTS_ACTIVE), "short",
                     (Query(f"sum({selector(cat.AGENTS_ACTIVE)})", "active"),),
                     kind="stat", width=6, height=5),
            PanelDef("Workflows finished", describe(cat.WORKFLOWS), "ops",
                     (Query(rate(cat.WORKFLOWS), "workflows/s"),), kind="stat", width=6,
                     height=5),
            PanelDef("Workflow failure ratio", describe(cat.WORKFLOWS), "percentunit",
                     (Query(failed_ratio, "failed"),), kind="stat", width=6, height=5,
                     thresholds=thresholds(alerts, cat.WORKFLOWS, "ratio"), no_value="0"),
            # "or vector(0)": with nothing firing ALERTS has no series at all, and a
            # stat of an empty result reads "No data" rather than 0.
            PanelDef("Firing alerts", "Alerts firing in Prometheus (ALERTS) and in the "
                     "orchestrator's own evaluator (" + cat.ALERTS_FIRING.prometheus_name + ").",
                     "short",
                     (Query(f'sum(ALERTS{{alertstate="firing", {FILTER}}}) or vector(0)',
                            "prometheus"),
                      Query(f"sum({selector(cat.ALERTS_FIRING)}) or vector(0)", "in-process")),
                     kind="stat", width=6, height=5, no_value="0"),
        ]),
        ("Handoffs and decisions", [
            PanelDef("Handoff rate by from → to", describe(cat.HANDOFFS), "ops",
                     (Query(rate(cat.HANDOFFS, ["from_agent", "to_agent"]),
                            "{{from_agent}} → {{to_agent}}"),)),
            PanelDef("Decision rate by type", describe(cat.DECISIONS), "ops",
                     (Query(rate(cat.DECISIONS, ["decision_type"]), "{{decision_type}}"),)),
            percentiles("Handoff latency", cat.HANDOFF_DURATION, alerts),
            percentiles("Decision latency", cat.DECISION_DURATION, alerts),
        ]),
        ("Agents and context", [
            PanelDef("Context tokens per agent", describe(cat.CONTEXT_TOKENS) +
                     " The line is the ContextOverflow threshold.", "short",
                     (Query(f"max by (agent) ({selector(cat.CONTEXT_TOKENS)})", "{{agent}}"),),
                     thresholds=thresholds(alerts, cat.CONTEXT_TOKENS, "value")),
            PanelDef("Context items per agent", describe(cat.CONTEXT_ITEMS), "short",
                     (Query(f"max by (agent) ({selector(cat.CONTEXT_ITEMS)})", "{{agent}}"),)),
            PanelDef("Time active per agent", describe(cat.AGENT_ACTIVE_TIME) +
                     " Shown as the share of wall time each agent was active.", "percentunit",
                     (Query(rate(cat.AGENT_ACTIVE_TIME, ["agent"]), "{{agent}}"),)),
            PanelDef("Context refresh p95 by agent", describe(cat.CONTEXT_REFRESH_DURATION), "s",
                     (Query(quantile(0.95, cat.CONTEXT_REFRESH_DURATION, ["agent"]),
                            "{{agent}}"),)),
        ]),
        operations_row(alerts),
        ("Errors and safety", [
            PanelDef("Error rate", describe(cat.ERRORS), "ops",
                     (Query(rate(cat.ERRORS), "all"),
                      Query(rate(cat.ERRORS, ["agent", "error_type"]),
                            "{{agent}} {{error_type}}")),
                     thresholds=thresholds(alerts, cat.ERRORS, "rate")),
            PanelDef("Error ratio per agent", "Errors / (errors + decisions) per agent, over "
                     "the rate interval. The snapshot's agent_error_rate also counts the "
                     "handoffs an agent sends as operations, over windows.error_rate_s, so "
                     "it reads a little lower. " + describe(cat.ERRORS, cat.DECISIONS),
                     "percentunit",
                     (Query(error_ratio, "{{agent}}"),)),
            PanelDef("Safety blocks by rule", describe(cat.SAFETY_BLOCKS), "ops",
                     (Query(rate(cat.SAFETY_BLOCKS, ["rule"]), "{{rule}}"),),
                     thresholds=thresholds(alerts, cat.SAFETY_BLOCKS, "rate")),
            PanelDef("Orchestrator mode", describe(cat.MODE), "short",
                     (Query(f"max by (mode) ({selector(cat.MODE)})", "{{mode}}"),)),
        ]),
        ("Workflows", [
            PanelDef("Workflow throughput", describe(cat.WORKFLOWS_STARTED, cat.WORKFLOWS), "ops",
                     (Query(rate(cat.WORKFLOWS_STARTED), "started"),
                      Query(rate(cat.WORKFLOWS, ["outcome"]), "{{outcome}}"))),
            PanelDef("Workflow failure ratio over time", describe(cat.WORKFLOWS), "percentunit",
                     (Query(failed_ratio, "failed / finished"),),
                     thresholds=thresholds(alerts, cat.WORKFLOWS, "ratio")),
            percentiles("Workflow duration", cat.WORKFLOW_DURATION, alerts, ["outcome"]),
            PanelDef("Profiled operations p95", describe(cat.OPERATION_DURATION), "s",
                     (Query(quantile(0.95, cat.OPERATION_DURATION, ["operation"]),
                            "{{operation}}"),), no_value="none profiled"),
        ]),
        ("State", [
            PanelDef("State save and load p95", describe(cat.STATE_SAVE_DURATION,
                                                      cat.STATE_LOAD_DURATION), "s",
                     (Query(quantile(0.95, cat.STATE_SAVE_DURATION), "save p95"),
                      Query(quantile(0.95, cat.STATE_LOAD_DURATION), "load p95")),
                     thresholds=thresholds(alerts, cat.STATE_SAVE_DURATION, "quantile", 0.95)),
            PanelDef("State saves", describe(cat.STATE_SAVES), "ops",
                     (Query(rate(cat.STATE_SAVES), "saves/s"),
                      Query(rate(cat.STATE_LOAD_DURATION, suffix="_count"), "loads/s"))),
            PanelDef("State file size", describe(cat.STATE_FILE_SIZE), "bytes",
                     (Query(f"max by (instance) ({selector(cat.STATE_FILE_SIZE)})",
                            "{{instance}}"),)),
        ]),
        ("Process", [
            PanelDef("Resident memory", describe(cat.PROCESS_MEMORY), "bytes",
                     (Query(f"max by (instance) ({selector(cat.PROCESS_MEMORY)})",
                            "{{instance}}"),)),
            PanelDef("CPU", describe(cat.PROCESS_CPU), "percent",
                     (Query(f"max by (instance) ({selector(cat.PROCESS_CPU)})",
                            "{{instance}}"),)),
        ]),
        ("Telemetry", [
            PanelDef("Events accepted by signal", describe(cat.EVENTS), "ops",
                     (Query(rate(cat.EVENTS, ["signal"]), "{{signal}}"),)),
            PanelDef("Telemetry problems", "Each of these should stay at zero; the series "
                     "only appear once something went wrong. " +
                     describe(cat.INVALID_EVENTS, cat.EXPORTER_ERRORS, cat.DROPPED,
                           cat.SERIES_OVERFLOW), "ops",
                     (Query(rate(cat.INVALID_EVENTS, ["signal", "reason"]),
                            "invalid {{signal}} ({{reason}})"),
                      Query(rate(cat.EXPORTER_ERRORS, ["exporter"]),
                            "exporter {{exporter}} failed"),
                      Query(rate(cat.DROPPED, ["component", "reason"]),
                            "dropped {{component}} ({{reason}})"),
                      Query(rate(cat.SERIES_OVERFLOW, ["metric"]), "overflow {{metric}}")),
                     no_value="0"),
            PanelDef("Spans exported", describe(cat.SPANS_EXPORTED) +
                     " Every span the tracer ends is exported or dropped; the drops "
                     "(component tracer) are in the panel beside.", "ops",
                     (Query(rate(cat.SPANS_EXPORTED), "exported"),)),
            PanelDef("Telemetry handler time", describe(cat.HANDLER_TIME) +
                     " Shown as the share of one CPU spent handling signals.", "percentunit",
                     (Query(f"max by (instance) (rate({selector(cat.HANDLER_TIME)}[{RATE}]))",
                            "{{instance}}"),)),
        ]),
        ("Alerts", [
            PanelDef("Firing alerts in Prometheus", "Prometheus' ALERTS series for the rules "
                     "rendered by `yolo-telemetry render alerts`.", "short",
                     (Query(firing_prometheus, "{{alertname}} ({{severity}})"),),
                     no_value="none firing"),
            PanelDef("Firing alerts in the orchestrator", describe(cat.ALERTS_FIRING), "short",
                     (Query(f"sum by (alertname, severity) ({selector(cat.ALERTS_FIRING)})",
                            "{{alertname}} ({{severity}})"),)),
        ]),
    ]


def build(alerts: Sequence[AlertDefinition]) -> object:
    """The dashboard model (grafana_foundation_sdk.models.dashboard.Dashboard)."""
    from grafana_foundation_sdk.builders import dashboard as gd
    from grafana_foundation_sdk.models import dashboard as gm

    datasource = gm.DataSourceRef(type_val="prometheus", uid="${datasource}")
    builder = (
        gd.Dashboard(TITLE).uid(UID)
        .description("Agents, handoffs, context, errors, workflows and telemetry health of "
                     "YOLO orchestrators. Generated by `yolo-telemetry render dashboard`.")
        .tags(["yolo", "yolo-telemetry"]).editable().refresh("30s")
        .time("now-1h", "now").timezone("browser")
        .with_variable(gd.DatasourceVariable("datasource").label("Data source")
                       .type("prometheus"))
        .with_variable(_label_variable(gd, gm, "job", "yolo_mode", datasource))
        .with_variable(_label_variable(gd, gm, "instance", 'yolo_mode{job=~"$job"}',
                                       datasource))
    )
    panel_id = 0
    for title, panels in panel_rows(alerts):
        panel_id += 1
        builder = builder.with_row(gd.Row(title).id(panel_id))
        for panel in panels:
            panel_id += 1
            builder = builder.with_panel(_panel(panel, datasource).id(panel_id))
    return builder.build()


def _label_variable(gd, gm, label: str, series: str, datasource) -> object:
    return (gd.QueryVariable(label).label(label).datasource(datasource)
            .query(f"label_values({series}, {label})")
            .refresh(gm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(gm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*")
            .current(gm.VariableOption(selected=True, text=["All"], value=["$__all"])))


def _panel(definition: PanelDef, datasource) -> object:
    from grafana_foundation_sdk.builders import common as gc
    from grafana_foundation_sdk.builders import dashboard as gd
    from grafana_foundation_sdk.builders import prometheus, stat, timeseries
    from grafana_foundation_sdk.models import common as cm
    from grafana_foundation_sdk.models import dashboard as gm

    panel = stat.Panel() if definition.kind == "stat" else timeseries.Panel()
    panel = (panel.title(definition.title).description(definition.description)
             .datasource(datasource).unit(definition.unit)
             .height(definition.height).span(definition.width))
    for index, query in enumerate(definition.queries):
        target = (prometheus.Dataquery().expr(query.expr).legend_format(query.legend)
                  .ref_id(chr(ord("A") + index)).datasource(datasource))
        if query.expr.startswith("histogram_quantile("):
            # latency: the buckets' exemplars (trace ids of the observations) show as
            # points on the graph, each linking to its trace (docs/tracing.md#exemplars)
            target = target.exemplar(True)
        panel = panel.with_target(target)
    steps = [gm.Threshold(value=None, color="green")]
    colours = {"warning": "orange", "critical": "red"}
    steps += [gm.Threshold(value=value, color=colours[severity])
              for value, severity in definition.thresholds]
    panel = panel.thresholds(gd.ThresholdsConfig().mode(gm.ThresholdsMode.ABSOLUTE)
                             .steps(steps))
    if definition.no_value is not None:
        panel = panel.no_value(definition.no_value)
    if definition.kind == "stat":
        panel = (panel.reduce_options(gc.ReduceDataOptions().calcs(["lastNotNull"])
                                      .values(False))
                 .graph_mode(cm.BigValueGraphMode.AREA)
                 .color_mode(cm.BigValueColorMode.VALUE)
                 .text_mode(cm.BigValueTextMode.AUTO))
    else:
        panel = (panel.fill_opacity(10).line_width(1)
                 .legend(gc.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                         .placement(cm.LegendPlacement.BOTTOM).show_legend(True))
                 .thresholds_style(gc.GraphThresholdsStyleConfig().mode(
                     cm.GraphTresholdsStyleMode.DASHED if definition.thresholds
                     else cm.GraphTresholdsStyleMode.OFF)))
    return panel


def render_dashboard(alerts: Sequence[AlertDefinition]) -> str:
    """The dashboard JSON, as written to config/grafana/yolo-overview.json."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    text = JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False).encode(build(alerts))
    return text + "\n"


def queries(document: str | dict) -> list[str]:
    """Every PromQL expression of every panel of a rendered dashboard."""
    data = json.loads(document) if isinstance(document, str) else document
    return [target["expr"] for panel in data.get("panels", [])
            for target in panel.get("targets", []) if target.get("expr")]
