"""The pieces dashboard panels are made of: queries through the catalogue, panel
definitions, and threshold lines taken from the alert definitions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telemetry.alerting.definitions import AlertDefinition
from telemetry.alerting.rules import number
from telemetry.catalogue import MetricSpec

RATE = "$__rate_interval"
#: Every catalogue metric appears in a panel; the test checks it.
FILTER = 'job=~"$job", instance=~"$instance"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelDef:
    """One panel, before it is turned into SDK builders."""

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"  # timeseries | stat
    thresholds: tuple[tuple[float, str], ...] = ()  # (value, severity) from alerts
    width: int = 12
    height: int = 8
    no_value: str | None = None


def selector(spec: MetricSpec, suffix: str = "", **match: str) -> str:
    extra = "".join(f', {key}="{value}"' for key, value in sorted(match.items()))
    return f"{spec.prometheus_name}{suffix}{{{FILTER}{extra}}}"


def _by(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def rate(spec: MetricSpec, by: Sequence[str] = (), suffix: str = "", **match: str) -> str:
    return f"sum{_by(by)} (rate({selector(spec, suffix, **match)}[{RATE}]))"


def quantile(q: float, spec: MetricSpec, by: Sequence[str] = ()) -> str:
    return (f"histogram_quantile({number(q)}, "
            f"sum{_by(['le', *by])} (rate({selector(spec, '_bucket')}[{RATE}])))")


def legend(labels: Sequence[str], fallback: str) -> str:
    return " ".join("{{" + label + "}}" for label in labels) or fallback


def describe(*specs: MetricSpec) -> str:
    return " ".join(f"{spec.prometheus_name}: {spec.help}" for spec in specs)


def thresholds(alerts: Iterable[AlertDefinition], spec: MetricSpec, kind: str,
                q: float | None = None) -> tuple[tuple[float, str], ...]:
    return tuple(sorted(
        (alert.threshold, alert.severity) for alert in alerts
        if alert.spec == spec and alert.kind == kind and alert.quantile == q
        and alert.comparison in (">", ">=") and not alert.match))


def percentiles(title: str, spec: MetricSpec, alerts: Sequence[AlertDefinition],
                 by: Sequence[str] = ()) -> PanelDef:
    queries = tuple(Query(quantile(q, spec, by), f"p{round(q * 100)} {legend(by, '')}".strip())
                    for q in (0.5, 0.95, 0.99))
    return PanelDef(title, describe(spec), "s", queries,
                    thresholds=thresholds(alerts, spec, "quantile", 0.95))


def ratio(numerator: str, denominator: str) -> str:
    return f"{numerator} / {denominator}"


def reading_thresholds(alerts: Iterable[AlertDefinition], spec: MetricSpec, kind: str,
                       per_s: float | None = None) -> tuple[tuple[float, str], ...]:
    """Thresholds of every reading (``or`` readings too) of ``kind`` on ``spec``; an
    ``increase`` threshold is converted to one over ``per_s`` seconds (e.g. per hour)."""
    found = set()
    for alert in alerts:
        for reading in alert.readings:
            if (reading.spec == spec and reading.kind == kind
                    and reading.comparison in (">", ">=")):
                value = reading.threshold
                if per_s is not None and reading.window_s:
                    value = value * per_s / reading.window_s
                found.add((value, alert.severity))
    return tuple(sorted(found))
