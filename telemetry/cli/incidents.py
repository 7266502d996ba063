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
* ``slow-handoffs``: the handoff queue stalls; every handoff takes 32-40 s
  (HandoffLatencyHigh, a warning: ``/health`` answers 200 with status degraded);
* ``stall``: the active agent waits, silent, on a call that never returns, until
  the incident ends (AgentStalled, a warning);
* ``loop``: an agent sends the work back to the one before it and the two pass it
  to and fro, each redoing the same failing tool call (HandoffLoop and
  ToolCallRepeating, warnings);
* ``tokens``: the active agent keeps re-sending its whole history, some 150k
  tokens every few seconds (TokenBudgetBurn, a warning).

The built-in alerts look at 5 minutes to an hour of data and wait up to 10 minutes
before firing, as they should in production; an incident of two minutes would
never reach them. :func:`demo_alerts` keeps every alert's metric, severity and
rate and shortens its window and ``for``: a threshold on a rate stays as it is,
one on an ``increase`` (a count over the window) shrinks with the window, so the
rate it stands for is the same. AgentStalled's budgets shrink so the one between
calls is a minute. Budgets on ages are simulated time, so they also shrink with
``--time-scale`` (an agent silent for a simulated minute is silent for
``time_scale`` minutes of real time, which is what Prometheus' ``time()`` counts).
The demo shows the same alert within a minute or two; it says so when it starts,
and ``demo --write-rules FILE`` writes the matching Prometheus rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from telemetry.alerting.builtins import effective_alerts
from telemetry.alerting.definitions import AlertDefinition, Reading
from telemetry.config import TelemetryConfig

R = TypeVar("R", bound=Reading)

#: The longest window and ``for`` an alert keeps while the demo stages an incident.
DEMO_WINDOW_S = 60.0
DEMO_FOR_S = 30.0
#: Alerts on ages whose budgets the demo shortens, and the longest budget each keeps
#: (the alert's other budgets shrink by the same factor).
DEMO_AGE_BUDGETS_S = {"AgentStalled": 60.0}


@dataclass(frozen=True)
class Incident:
    """One staged incident: what goes wrong, when (simulated seconds) and for how long."""

    kind: str
    start_s: float = 30.0
    duration_s: float = 120.0

    @property
    def alert(self) -> str:
        return ALERT_OF[self.kind]

    @property
    def alerts(self) -> tuple[str, ...]:
        """Every built-in alert the incident makes fire, its own first."""
        return (self.alert, *ALSO_FIRES.get(self.kind, ()))


#: The built-in alert each incident makes fire.
ALERT_OF = {"errors": "HighErrorRate", "context": "ContextOverflow",
            "slow-handoffs": "HandoffLatencyHigh", "stall": "AgentStalled",
            "loop": "HandoffLoop", "tokens": "TokenBudgetBurn"}
#: Other built-in alerts an incident makes fire.
ALSO_FIRES = {"loop": ("ToolCallRepeating",)}
KINDS = tuple(ALERT_OF)


def demo_alerts(alerts: Iterable[AlertDefinition],
                time_scale: float = 1.0) -> list[AlertDefinition]:
    """The same alerts with windows of at most 1 minute, ``for`` of at most 30 s, the
    shorter budgets of :data:`DEMO_AGE_BUDGETS_S`, and budgets on ages in real time
    at ``time_scale`` (0, as fast as possible, leaves them)."""
    shortened = []
    for alert in alerts:
        budget = DEMO_AGE_BUDGETS_S.get(alert.name)
        factor = min(budget / alert.threshold, 1.0) if budget and alert.threshold > 0 else 1.0
        factor *= time_scale or 1.0
        readings = [_shortened(reading, factor) for reading in alert.readings]
        shortened.append(readings[0].model_copy(update={
            "for_": min(alert.for_, DEMO_FOR_S), "or_": tuple(readings[1:])}))
    return shortened


def _shortened(reading: R, age_factor: float) -> R:
    update: dict[str, float] = {}
    if reading.window is not None:
        update["window"] = min(reading.window, DEMO_WINDOW_S)
        if reading.kind == "increase":
            update["threshold"] = round(reading.threshold * update["window"] / reading.window,
                                        6)
    if reading.kind == "age":
        update["threshold"] = round(reading.threshold * age_factor, 6)
    return reading.model_copy(update=update)


def with_demo_alerts(config: TelemetryConfig, time_scale: float = 1.0) -> TelemetryConfig:
    """``config`` evaluating :func:`demo_alerts` of the alerts it has in force."""
    alerts = demo_alerts(effective_alerts(config.alerts, config.alerting), time_scale)
    alerting = config.alerting.model_copy(update={"extra": [], "disable": []})
    return config.model_copy(update={"alerts": alerts, "alerting": alerting})
