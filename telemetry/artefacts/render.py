"""``yolo-telemetry render``: write the artefacts derived from the catalogue and config.

* ``render alerts``: the Prometheus rules file (config/prometheus/yolo-alerts.yml),
* ``render dashboard``: the Grafana dashboard (config/grafana/yolo-overview.json),
* ``render metrics``: the metric table of docs/monitoring.md (Markdown),
* ``render alert-table``: the table of alerts in force in docs/monitoring.md.

Each reads the alert definitions from ``--config`` (default: $YOLO_TELEMETRY_CONFIG
or the embedded default), so custom thresholds show up in rules and dashboard
alike. Output goes to stdout unless ``-o FILE`` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from telemetry import catalogue as cat
from telemetry import config as config_module
from telemetry.alerting.builtins import effective_alerts
from telemetry.alerting.definitions import AlertDefinition, format_duration
from telemetry.alerting.rules import render_rules, rule
from telemetry.catalogue import Kind

#: Where the committed copies live, relative to the repository root.
ALERTS_FILE = Path("config/prometheus/yolo-alerts.yml")
DASHBOARD_FILE = Path("config/grafana/yolo-overview.json")


def metrics_table() -> str:
    """The catalogue as a Markdown table (what each metric means)."""
    rows = ["| metric | kind | labels | meaning |", "|---|---|---|---|"]
    for spec in cat.CATALOGUE:
        name = f"`{spec.prometheus_name}`"
        if spec.kind is Kind.HISTOGRAM:
            name += " (`_bucket`, `_sum`, `_count`)"
        labels = ", ".join(spec.labels) or "-"
        rows.append(f"| {name} | {spec.kind.value} | {labels} | {spec.help} |")
    return "\n".join(rows) + "\n"


def alert_table(alerts: Iterable[AlertDefinition],
                group_labels: Iterable[str] = ("job", "instance")) -> str:
    """The alerts as a Markdown table: what fires, how soon, how bad."""
    rows = ["| alert | severity | fires when | for |", "|---|---|---|---|"]
    for alert in alerts:
        expr = rule(alert, group_labels)["expr"].replace("|", "\\|")
        rows.append(f"| {alert.name} | {alert.severity} | `{expr}` | "
                    f"{format_duration(alert.for_)} |")
    return "\n".join(rows) + "\n"


def render(what: str, config_source: Any = None) -> str:
    """The text of one artefact for the given config (path, dict or None)."""
    if what == "metrics":
        return metrics_table()
    loaded = config_module.load(config_source)
    alerts = effective_alerts(loaded.alerts, loaded.alerting)
    if what == "alerts":
        return render_rules(alerts, loaded.alerting.group_labels)
    if what == "alert-table":
        return alert_table(alerts, loaded.alerting.group_labels)
    if what == "dashboard":
        from telemetry.artefacts.dashboard import render_dashboard

        try:
            return render_dashboard(alerts)
        except ModuleNotFoundError as error:
            if not (error.name or "").startswith("grafana_foundation_sdk"):
                raise
            raise config_module.ConfigError(
                "render dashboard needs the Grafana Foundation SDK: "
                "pip install 'yolo-telemetry[dashboards]'") from None
    raise ValueError(f"nothing to render called {what!r}")


def _run(args: argparse.Namespace) -> int:
    text = render(args.what, args.config)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


def add_parser(commands: Any) -> None:
    """Register ``render`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "render", help="write the alert rules, the Grafana dashboard or the docs' tables")
    parser.add_argument("what", choices=("alerts", "dashboard", "metrics", "alert-table"))
    parser.add_argument("--config", "-c", default=None,
                        help="config whose alerts to use (default: $YOLO_TELEMETRY_CONFIG "
                             "or the embedded one)")
    parser.add_argument("--output", "-o", default=None, help="write to FILE (default: stdout)")
    parser.set_defaults(run=_run)
