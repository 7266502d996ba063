"""Alert instances: one label set of one alert as it goes pending, firing, resolved.

Shared by the evaluator, which makes them, and the notifiers (the webhook), which
send them; neither imports the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from telemetry.alerting.definitions import AlertDefinition
from telemetry.alerting.templates import render_template


def iso(epoch: float | None) -> str | None:
    """RFC 3339 in UTC, as Alertmanager writes times."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class AlertInstance:
    """One label set of one alert, while it is pending or firing (and once resolved)."""

    alert: AlertDefinition
    labels: dict[str, str]
    value: float
    active_since: float  # monotonic, for ``for``
    active_since_wall: float
    state: str = "pending"  # pending -> firing -> resolved
    fired_at: float | None = None  # epoch seconds
    resolved_at: float | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.alert.name

    @property
    def fingerprint(self) -> str:
        text = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(self.labels.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def render_annotations(self) -> None:
        by_labels = {name: self.labels.get(name, "") for name in self.alert.by}
        self.annotations = {"summary": render_template(self.alert.summary, by_labels, self.value)}
        if self.alert.description:
            self.annotations["description"] = render_template(
                self.alert.description, by_labels, self.value)
        if self.alert.runbook_url:
            self.annotations["runbook_url"] = self.alert.runbook_url

    def as_dict(self) -> dict[str, Any]:
        return {
            "alertname": self.name,
            "severity": self.alert.severity,
            "state": self.state,
            "labels": dict(self.labels),
            "value": self.value,
            "summary": self.annotations.get("summary", ""),
            "active_since": iso(self.active_since_wall),
            "firing_since": iso(self.fired_at),
        }


class Notifier(Protocol):
    """Receives each evaluation's outcome; must return at once (it has its own thread)."""

    def update(self, firing: list[AlertInstance], changed: list[AlertInstance],
               now: float) -> None: ...

    def start(self) -> None: ...

    def stop(self, timeout_s: float = 5.0) -> None: ...
