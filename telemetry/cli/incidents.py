"""Incidents the demo can stage on request, and the alert timings that show them quickly.

The reference orchestrator's default story is a healthy system. ``demo --incident
KIND`` makes one thing go wrong for a while (``start_s`` simulated seconds after
the start but not before a workflow has completed, for ``duration_s``) so a
user can watch the matching built-in alert fire and clear:

* ``errors``: the model provider rate-limits; most decisions fail and are retried,
  so agents raise errors fast (HighErrorRate, critical: ``/health`` answers 503);
* ``context``: a tool floods every agent's context and refreshes stop, so contexts
  pass 9000 tokens (ContextOverflow, critical; ``/health`` is 503 as soon as a
  context crosses ``health.context_tokens_critical``);
* ``stall``: the handoff queue stalls; every handoff takes 32-40 s
  (HandoffLatencyHigh, a warning: ``/health`` answers 200 with status degraded).

The built-in alerts look at 5 to 15 minutes of data and wait up to 10 minutes
before firing, as they should in production; an incident of two minutes would
never reach them. :func:`demo_alerts` keeps every alert's metric, threshold and
severity and shortens only its window and ``for``, so the demo shows the same
alert within a minute or two. The demo says so when it starts, and
``demo --write-rules FILE`` writes the matching Prometheus rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from telemetry.alerting.definitions import AlertDefinition, effective_alerts
from telemetry.config import TelemetryConfig

#: The longest window and ``for`` an alert keeps while the demo stages an incident.
DEMO_WINDOW_S = 60.0
DEMO_FOR_S = 30.0


@dataclass(frozen=True)
class Incident:
    """One staged incident: what goes wrong, when (simulated seconds) and for how long."""

    kind: str
    start_s: float = 30.0
    duration_s: float = 120.0

    @property
    def alert(self) -> str:
        return ALERT_OF[self.kind]


#: The built-in alert each incident makes fire.
ALERT_OF = {"errors": "HighErrorRate", "context": "ContextOverflow",
            "stall": "HandoffLatencyHigh"}
KINDS = tuple(ALERT_OF)


def demo_alerts(alerts: Iterable[AlertDefinition]) -> list[AlertDefinition]:
    """The same alerts with windows of at most 1 minute and ``for`` of at most 30 s."""
    shortened = []
    for alert in alerts:
        update: dict[str, float] = {"for_": min(alert.for_, DEMO_FOR_S)}
        if alert.window is not None:
            update["window"] = min(alert.window, DEMO_WINDOW_S)
        shortened.append(alert.model_copy(update=update))
    return shortened


def with_demo_alerts(config: TelemetryConfig) -> TelemetryConfig:
    """``config`` evaluating :func:`demo_alerts` of the alerts it has in force."""
    alerts = demo_alerts(effective_alerts(config.alerts, config.alerting))
    alerting = config.alerting.model_copy(update={"extra": [], "disable": []})
    return config.model_copy(update={"alerts": alerts, "alerting": alerting})
