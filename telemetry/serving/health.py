"""The /health document and how its status is derived.

Status, worst wins:

* ``unhealthy`` (HTTP 503): a check reports ``unhealthy`` (a critical alert firing),
  an agent's context is at or above ``health.context_tokens_critical``, or telemetry
  is not running.
* ``degraded`` (HTTP 200): an exporter is failing, a check reports ``degraded`` (a
  warning alert), an agent's context is at or above ``health.context_tokens_warning``,
  or the orchestrator reported mode ``degraded``.
* ``healthy`` (HTTP 200): none of the above.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from telemetry.config import HealthConfig
from telemetry.metrics import AgentMetrics, SystemMetrics

STATUS_ORDER = ("healthy", "degraded", "unhealthy")
#: What a check's own status means for the overall one.
_CHECK_STATUS = {"ok": "healthy", "starting": "healthy", "disabled": "healthy",
                 "failing": "degraded", "degraded": "degraded", "unhealthy": "unhealthy"}

HealthCheck = Callable[[], dict[str, Any]]


def worst(*statuses: str) -> str:
    return max(statuses, key=STATUS_ORDER.index, default="healthy")


def context_health(agent: AgentMetrics, config: HealthConfig) -> dict[str, Any]:
    agents = {}
    for name, tokens in sorted(agent.context_tokens_by_agent.items()):
        if tokens >= config.context_tokens_critical:
            level = "critical"
        elif tokens >= config.context_tokens_warning:
            level = "warning"
        else:
            level = "ok"
        agents[name] = {"tokens": tokens,
                        "items": agent.context_items_by_agent.get(name, 0), "status": level}
    levels = [a["status"] for a in agents.values()]
    overall = "critical" if "critical" in levels else "warning" if "warning" in levels else "ok"
    return {"status": overall, "warning_tokens": config.context_tokens_warning,
            "critical_tokens": config.context_tokens_critical, "agents": agents}


def health_document(
    *,
    state: str,
    agent: AgentMetrics,
    system: SystemMetrics,
    checks: Mapping[str, dict[str, Any]],
    config: HealthConfig,
    service: dict[str, Any],
) -> dict[str, Any]:
    context = context_health(agent, config)
    reasons: list[str] = []
    status = "healthy"
    if state != "running":
        status = "unhealthy"
        reasons.append(f"telemetry is {state}")
    if context["status"] != "ok":
        level = "unhealthy" if context["status"] == "critical" else "degraded"
        status = worst(status, level)
        reasons.append(f"context tokens {context['status']}")
    if system.mode == "degraded":
        status = worst(status, "degraded")
        reasons.append("orchestrator mode is degraded")
    for name, check in checks.items():
        level = _CHECK_STATUS.get(str(check.get("status")), "degraded")
        if level != "healthy":
            reasons.append(f"{name} is {check.get('status')}")
        status = worst(status, level)
    return {
        "status": status,
        "reasons": reasons,
        **service,
        "state": state,
        "mode": system.mode,
        "current_agent": agent.current_agent,
        "agents_active": agent.current_agents_active,
        "uptime_seconds": round(system.uptime_seconds, 3),
        "errors_last_hour": agent.errors_last_hour,
        "memory_usage_mb": round(system.memory_usage_mb, 2),
        "cpu_usage_percent": round(system.cpu_usage_percent, 2),
        "events_total": system.events_total,
        "invalid_events_total": system.invalid_events_total,
        "context_health": context,
        "checks": dict(checks),
    }


def http_status(document: Mapping[str, Any]) -> int:
    return 503 if document["status"] == "unhealthy" else 200
