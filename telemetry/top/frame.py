"""Builds a :class:`~telemetry.top.model.Frame` from the history of readings.

Rates compare each instance's latest reading with its reading one window earlier
(or the oldest one there is); the instances shown (all, or the one picked) are
added up. Nothing here trusts an answer's shape: a missing metric or a /health
without some field gives None or an empty list, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from telemetry import catalogue as cat
from telemetry.config import HealthConfig
from telemetry.top.agents import SPENT, TOKENS, StateRules, agent_rows, firing_alerts
from telemetry.top.model import (
    Alert,
    Frame,
    HandoffCell,
    Handoffs,
    Header,
    InstanceStatus,
    Sparklines,
    Thresholds,
    Workflows,
)
from telemetry.top.readings import History, Reading, increase, increase_by

_STATUS_ORDER = ("healthy", "degraded", "unhealthy")


@dataclass(frozen=True)
class FrameSettings:
    rate_window_s: float = 10.0  # the agents table and events/s
    minute_window_s: float = 60.0  # the handoff matrix and workflows
    sparkline_points: int = 60
    rules: StateRules = field(default_factory=StateRules)


Pair = tuple[Reading | None, Reading]


def _pairs(history: History, instances: list[str], window_s: float) -> list[Pair]:
    pairs: list[Pair] = []
    for instance in instances:
        latest = history.latest(instance)
        if latest is None:
            continue
        base = history.at_or_before(instance, latest.taken_at - window_s)
        pairs.append((base if base is not None and base is not latest else None, latest))
    return pairs


def build_frame(history: History, now: float, source: str,
                settings: FrameSettings | None = None, selected: str | None = None) -> Frame:
    """The frame of the instances in ``history`` (only ``selected`` when given)."""
    settings = settings or FrameSettings()
    instances = [i for i in history.instances() if selected in (None, i)]
    pairs = _pairs(history, instances, settings.rate_window_s)
    minute = _pairs(history, instances, settings.minute_window_s)
    context = _thresholds([latest for _, latest in pairs])
    return Frame(
        taken_at=now, rate_window_s=settings.rate_window_s,
        header=_header(history, instances, pairs, now, source, selected),
        agents=agent_rows(pairs, now, context, settings.rules),
        handoffs=_handoffs(minute, settings.minute_window_s),
        workflows=_workflows(minute, now),
        sparklines=_sparklines(history, instances, now, settings),
        context=context)


def _thresholds(latest: list[Reading]) -> Thresholds:
    defaults = HealthConfig()
    warning, critical = defaults.context_tokens_warning, defaults.context_tokens_critical
    for reading in latest:
        context = _dict(_dict(reading.health).get("context_health"))
        warning = _number(context.get("warning_tokens"), warning)
        critical = _number(context.get("critical_tokens"), critical)
    return Thresholds(warning, critical)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default


def _rate(pairs: list[Pair], name: str, where: Mapping[str, str] | None = None) -> float | None:
    rates = [increase(base, latest, name, where) / (latest.taken_at - base.taken_at)
             for base, latest in pairs if base is not None]
    return sum(rates) if rates else None


def _header(history: History, instances: list[str], pairs: list[Pair], now: float,
            source: str, selected: str | None) -> Header:
    statuses, reasons, services, modes, firing = [], [], [], [], []
    uptime: float | None = None
    for instance in instances:
        latest, failed = history.latest(instance), history.last_error.get(instance)
        health = _dict(latest.health) if latest else {}
        status = str(health.get("status", "unknown")) if latest else "lost"
        prefix = f"{instance}: " if len(instances) > 1 else ""
        if failed is not None and (latest is None or failed.taken_at >= latest.taken_at):
            status = "lost" if not failed.ok else status
            reasons.append(f"{prefix}{'connection lost' if not failed.ok else 'partial answer'}:"
                           f" {failed.error}")
        statuses.append(InstanceStatus(
            instance, status, failed.error if failed else None,
            round(now - latest.taken_at, 3) if latest else None))
        if latest is None:
            continue
        reasons += [f"{prefix}{reason}" for reason in health.get("reasons", [])
                    if isinstance(reason, str)]
        service = " ".join(str(health[k]) for k in ("service", "version") if health.get(k))
        services += [service] if service and service not in services else []
        mode = health.get("mode")
        modes += [str(mode)] if mode and str(mode) not in modes else []
        if isinstance(health.get("uptime_seconds"), int | float):
            uptime = max(uptime or 0.0, health["uptime_seconds"] + now - latest.taken_at)
        firing += [_alert(a, instance) for a in firing_alerts(latest)]
    known = [s.status for s in statuses if s.status in _STATUS_ORDER]
    status = max(known, key=_STATUS_ORDER.index) if known else "unknown"
    return Header(source=source, service=", ".join(services) or "?",
                  instances=statuses, mode=", ".join(modes) or None, status=status,
                  reasons=reasons, uptime_s=uptime,
                  events_per_s=_rate(pairs, cat.EVENTS.prometheus_name),
                  firing=_unique(firing), selected=selected)


def _alert(found: Mapping[str, Any], instance: str) -> Alert:
    labels = _dict(found.get("labels"))
    return Alert(str(found.get("alertname", "?")), str(found.get("severity", "?")),
                 {str(k): str(v) for k, v in labels.items()
                  if k not in ("alertname", "severity")}, instance)


def _unique(alerts: list[Alert]) -> list[Alert]:
    seen, kept = set(), []
    for alert in alerts:
        key = (alert.name, tuple(sorted(alert.labels.items())))
        if key not in seen:
            seen.add(key)
            kept.append(alert)
    return sorted(kept, key=lambda a: (a.severity != "critical", a.name))


def _handoffs(pairs: list[Pair], window_s: float) -> Handoffs:
    per_minute: dict[tuple[str, str], float] = {}
    totals: dict[tuple[str, str], float] = {}
    loops: dict[str, float] = {}
    name = cat.HANDOFFS.prometheus_name
    for base, latest in pairs:
        for labels, value in latest.series(name).items():
            found = dict(labels)
            edge = (found.get("from_agent", "?"), found.get("to_agent", "?"))
            totals[edge] = totals.get(edge, 0.0) + value
        if base is None:
            continue
        minutes = (latest.taken_at - base.taken_at) / 60.0
        for edge, grown in increase_by(base, latest, name, ("from_agent", "to_agent")).items():
            key = (edge[0], edge[1])
            per_minute[key] = per_minute.get(key, 0.0) + grown / minutes
        for (agent,), grown in increase_by(base, latest, cat.HANDOFF_LOOPS.prometheus_name,
                                           ("agent",)).items():
            if grown > 0:
                loops[agent] = loops.get(agent, 0.0) + grown
    cells = []
    for (source, target), total in sorted(totals.items()):
        rate = per_minute.get((source, target), 0.0)
        cells.append(HandoffCell(
            source, target, rate, total,
            bounce_back=rate > 0 and per_minute.get((target, source), 0.0) > 0,
            loop=rate > 0 and loops.get(target, 0.0) > 0))
    agents = sorted({agent for edge in totals for agent in edge} | set(loops))
    return Handoffs(agents, cells, loops, window_s)


def _workflows(pairs: list[Pair], now: float) -> Workflows:
    def per_minute(name: str, where: Mapping[str, str] | None = None) -> float | None:
        rate = _rate(pairs, name, where)
        return None if rate is None else rate * 60.0

    latest = [reading for _, reading in pairs]
    in_flight = [r.total(cat.WORKFLOWS_IN_FLIGHT.prometheus_name) for r in latest
                 if cat.WORKFLOWS_IN_FLIGHT.prometheus_name in r.samples]
    oldest = [value for r in latest
              for value in r.series(cat.WORKFLOW_OLDEST_START.prometheus_name).values()
              if value > 0]
    outcomes = cat.WORKFLOWS.prometheus_name
    return Workflows(
        in_flight=sum(in_flight) if in_flight else None,
        started_per_min=per_minute(cat.WORKFLOWS_STARTED.prometheus_name),
        completed_per_min=per_minute(outcomes, {"outcome": "completed"}),
        failed_per_min=per_minute(outcomes, {"outcome": "failed"}),
        oldest_in_flight_s=max(now - min(oldest), 0.0) if oldest else None)


def _sparklines(history: History, instances: list[str], now: float,
                settings: FrameSettings) -> Sparklines:
    """Points of the last ``span_s``, each the rate over the rate window ending there."""
    points = settings.sparkline_points
    step = history.span_s / points
    series: dict[str, list[float]] = {"events": [0.0] * points, "errors": [0.0] * points,
                                      "tokens": [0.0] * points}
    names = {"events": (cat.EVENTS.prometheus_name, None),
             "errors": (cat.ERRORS.prometheus_name, None), "tokens": (TOKENS, SPENT)}
    window = max(step, settings.rate_window_s)
    for instance in instances:
        for index in range(points):
            end = now - (points - 1 - index) * step
            latest = history.at_or_before(instance, end)
            base = history.at_or_before(instance, end - window)
            if latest is None or base is None or latest.taken_at <= base.taken_at:
                continue
            if latest.taken_at > end:
                continue  # history starts after this point
            elapsed = latest.taken_at - base.taken_at
            for key, (name, where) in names.items():
                series[key][index] += increase(base, latest, name, where) / elapsed
    return Sparklines(step, series["events"], series["errors"], series["tokens"])
