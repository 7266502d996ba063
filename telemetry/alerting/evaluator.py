"""In-process alert evaluation, for users without Prometheus (and to check it).

An :class:`AlertEvaluator` thread wakes every ``alerting.evaluation_interval_s``,
samples the aggregator (only the metrics the alerts read) into a bounded ring and
evaluates every definition the way Prometheus evaluates the generated rule. Each
label set that breaches its threshold becomes ``pending``; once it has done so for
``for`` it is ``firing``; when it stops breaching it is resolved and forgotten.

Results are published three ways, none of them on the orchestrator's path:

* ``/health``: the ``alerts`` check lists firing alerts; a warning makes the
  status ``degraded``, a critical one ``unhealthy``;
* ``yolo_alerts_firing{alertname,severity}``: one series per alert in force, the
  number of its firing label sets (0 when none: the series stays, so a resolved
  alert reads 0 rather than disappearing);
* optionally, a webhook in Alertmanager's format (:mod:`telemetry.alerting.webhook`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from telemetry import catalogue as cat
from telemetry.aggregation.aggregator import Aggregator
from telemetry.alerting.definitions import AlertDefinition, AlertingConfig
from telemetry.alerting.instances import AlertInstance, Notifier, iso
from telemetry.alerting.query import (
    Labels,
    SampleRing,
    breaching,
    current_read,
    metrics_read,
    views_read,
    windows_by_metric,
)

log = logging.getLogger("telemetry.alerts")

#: The most rows the alert history stores by default (``alerting.max_history_rows``;
#: one per label set an expression keeps, per sample): the built-in alerts keep a
#: handful per agent and sample, however many handoff series there are (49 in all at
#: 10,000 of them and no LLM calls).
MAX_HISTORY_ROWS = AlertingConfig.model_fields["max_history_rows"].default


class AlertEvaluator:
    """Samples the aggregator on a timer and holds the state of every alert."""

    def __init__(
        self,
        alerts: Iterable[AlertDefinition],
        aggregator: Aggregator,
        *,
        interval_s: float = 15.0,
        max_samples: int = 1000,
        max_rows: int = MAX_HISTORY_ROWS,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.alerts = tuple(alerts)
        self.aggregator = aggregator
        self.interval_s = interval_s
        self.notifier = notifier
        self._clock = clock
        self._wall = wall_clock
        self._specs = metrics_read(self.alerts)
        windows = windows_by_metric(self.alerts)
        margin = 2 * interval_s  # a window's first and last samples, both ends included
        self.ring = SampleRing(max(windows.values(), default=0.0) + margin, max_samples,
                               windowed=metrics_read(self.alerts, windowed=True),
                               retention_by_spec={spec: window + margin
                                                  for spec, window in windows.items()},
                               views=views_read(self.alerts), current=current_read(self.alerts),
                               track_values=aggregator.stale_after_s is not None,
                               max_rows=max_rows, on_drop=self._history_dropped)
        self._active: dict[tuple[str, Labels], AlertInstance] = {}
        self._lock = threading.Lock()
        self._failed_alerts: set[str] = set()
        self._logged_full = False
        self.evaluations = 0
        self.evaluation_errors = 0
        self.last_errors: dict[str, str] = {}
        self.last_evaluation: float | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> AlertEvaluator:
        for alert in self.alerts:
            self.aggregator.set(cat.ALERTS_FIRING, (alert.name, alert.severity), 0.0)
        if self.notifier is not None:
            self.notifier.start()
        self._thread = threading.Thread(target=self._run, name="telemetry-alerts", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.evaluate()
            except Exception:  # a backstop: evaluate() handles each alert's own failures
                log.exception("alert evaluation failed")
            if self._stopping.wait(self.interval_s):
                break

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop evaluating and give the notifier up to ``timeout_s`` to deliver."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout_s)
        if self.notifier is not None:
            self.notifier.stop(timeout_s)

    # -- evaluation --------------------------------------------------------------

    def evaluate(self) -> list[AlertInstance]:
        """One round: sample, evaluate every alert, publish. Returns what changed state
        (newly firing or resolved)."""
        now, wall = self._clock(), self._wall()
        self.ring.add_copies(now, self.aggregator.copy_series(self._specs), wall)
        changed: list[AlertInstance] = []
        errors: dict[str, str] = {}
        with self._lock:
            for alert in self.alerts:
                try:
                    results = breaching(alert, self.ring, now)
                except Exception as error:
                    errors[alert.name] = repr(error)
                    if alert.name not in self._failed_alerts:
                        self._failed_alerts.add(alert.name)
                        log.exception("cannot evaluate alert %s; further failures are only "
                                      "counted", alert.name)
                    continue
                changed.extend(self._advance(alert, results, now, wall))
            firing = [inst for inst in self._active.values() if inst.state == "firing"]
            self.evaluations += 1
            self.evaluation_errors += len(errors)
            self.last_errors = errors
            self.last_evaluation = wall
        counts = {alert.name: 0 for alert in self.alerts}
        for inst in firing:
            counts[inst.name] += 1
        for alert in self.alerts:
            self.aggregator.set(cat.ALERTS_FIRING, (alert.name, alert.severity),
                                float(counts[alert.name]))
        if self.notifier is not None:
            self.notifier.update(firing, changed, wall)
        return changed

    def _advance(self, alert: AlertDefinition, results: dict[Labels, float], now: float,
                 wall: float) -> list[AlertInstance]:
        changed = []
        for key, value in results.items():
            inst = self._active.get((alert.name, key))
            if inst is None:
                labels = {**alert.labels, **dict(zip(alert.by, key, strict=True))}
                inst = AlertInstance(alert, labels, value, now, wall)
                self._active[(alert.name, key)] = inst
            inst.value = value
            inst.render_annotations()
            if inst.state == "pending" and now - inst.active_since >= alert.for_:
                inst.state, inst.fired_at = "firing", wall
                changed.append(inst)
        for (name, key), inst in list(self._active.items()):
            if name == alert.name and key not in results:
                del self._active[(name, key)]
                if inst.state == "firing":
                    inst.state, inst.resolved_at = "resolved", wall
                    changed.append(inst)
        _log_changes(alert, changed)
        return changed

    def _history_dropped(self, samples: int) -> None:
        """The history was full (``max_rows``): its oldest samples were dropped."""
        self.aggregator.count_dropped("alerting", "history_full", samples)
        if not self._logged_full:
            self._logged_full = True
            log.warning("alert history full (%d rows): dropped its oldest samples; windows "
                        "are shorter until it shrinks (further drops are only counted)",
                        self.ring.max_rows)

    # -- reading -----------------------------------------------------------------

    def instances(self) -> list[AlertInstance]:
        """Pending and firing alerts, firing first."""
        with self._lock:
            found = list(self._active.values())
        return sorted(found, key=lambda inst: (inst.state != "firing", inst.name,
                                               sorted(inst.labels.items())))

    def firing(self) -> list[AlertInstance]:
        return [inst for inst in self.instances() if inst.state == "firing"]

    def health(self) -> dict[str, Any]:
        """The ``alerts`` entry of /health."""
        instances = self.instances()
        firing = [inst for inst in instances if inst.state == "firing"]
        severities = {inst.alert.severity for inst in firing}
        if self.evaluations == 0:
            status = "starting"
        elif "critical" in severities:
            status = "unhealthy"
        elif severities or self.last_errors:
            status = "degraded"
        else:
            status = "ok"
        return {
            "status": status,
            "firing": [inst.as_dict() for inst in firing],
            "pending": [inst.as_dict() for inst in instances if inst.state == "pending"],
            "alerts": [alert.name for alert in self.alerts],
            "evaluation_interval_s": self.interval_s,
            "evaluations": self.evaluations,
            "last_evaluation": iso(self.last_evaluation),
            "evaluation_errors": self.evaluation_errors,
            "last_errors": dict(self.last_errors),
            "history": self.ring.stats(),
        }


def _log_changes(alert: AlertDefinition, changed: list[AlertInstance]) -> None:
    """One line per alert and evaluation, however many label sets changed."""
    for state in ("firing", "resolved"):
        instances = [inst for inst in changed if inst.state == state]
        if instances:
            more = f" (and {len(instances) - 1} more)" if len(instances) > 1 else ""
            log.warning("alert %s %s: %s%s", alert.name, state,
                        instances[0].annotations.get("summary", ""), more)
