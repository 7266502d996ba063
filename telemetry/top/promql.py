"""The fleet source: every instance a Prometheus scrapes, read through its HTTP API.

One instant query fetches the samples a frame reads for every target at once
(grouped into one reading per ``instance`` label); ``up`` tells which targets are
down, and ``ALERTS`` which alerts fire. Prometheus has no /health of the instances,
so each reading carries a small document in its shape: the mode, and a status and
reasons from the firing alerts' severities. Because Prometheus keeps the past, the
source starts with a reading one window back, so the first frame already has rates.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from telemetry import catalogue as cat
from telemetry.config import HealthConfig
from telemetry.top.fetch import Credentials, FetchError, get
from telemetry.top.readings import WANTED, Labels, Reading, labels_key

_SEVERITY_STATUS = {"critical": "unhealthy", "warning": "degraded"}
_STATUS_ORDER = ("healthy", "degraded", "unhealthy")
_TARGET_LABELS = ("__name__", "instance", "job")


class PrometheusSource:
    """Reads a whole fleet from Prometheus at ``url``."""

    kind = "prometheus"

    def __init__(self, url: str, credentials: Credentials | None = None,
                 timeout_s: float = 5.0, lookback_s: float = 60.0) -> None:
        self.url = (url if "://" in url else f"http://{url}").rstrip("/")
        self.credentials = credentials or Credentials()
        self.timeout_s = timeout_s
        self.lookback_s = lookback_s
        self._known: list[str] = []  # instances seen, so a failure is shown on each
        health = HealthConfig()
        self._thresholds = {"warning_tokens": health.context_tokens_warning,
                            "critical_tokens": health.context_tokens_critical}

    def describe(self) -> str:
        return f"Prometheus {self.url}"

    def history(self) -> list[Reading]:
        """The fleet one lookback ago, so the first frame has rates (none on failure)."""
        readings = self._read_at(time.time() - self.lookback_s)
        return [reading for reading in readings if reading.ok]

    def read(self) -> list[Reading]:
        return self._read_at(time.time())

    def _read_at(self, at: float) -> list[Reading]:
        try:
            samples = self.query(_samples_query(), at)
            jobs = sorted({s["metric"].get("job", "") for s in samples})
            up = self.query(f'up{{job=~"{"|".join(map(re.escape, jobs))}"}}', at) if jobs else []
            alerts = self.query('ALERTS{alertstate="firing"}', at)
        except FetchError as error:
            return self._failed(at, f"Prometheus: {error}")
        by_instance: dict[str, dict[str, dict[Labels, float]]] = {}
        jobs_of: dict[str, str] = {}
        for sample in samples:
            metric = sample["metric"]
            instance = metric.get("instance", "")
            jobs_of[instance] = metric.get("job", "")
            labels = labels_key({k: v for k, v in metric.items() if k not in _TARGET_LABELS})
            value = _value(sample)
            if value != value:  # NaN: nothing to show
                continue
            by_instance.setdefault(instance, {}).setdefault(metric["__name__"], {})[labels] = value
        readings = []
        for target in up:
            instance = target["metric"].get("instance", "")
            if _value(target) == 0:
                readings.append(Reading(instance, at, error="target down (up == 0)"))
                by_instance.pop(instance, None)
        for instance, found in sorted(by_instance.items()):
            firing = [_alert(a) for a in alerts
                      if a["metric"].get("instance") in (None, instance)]
            readings.append(Reading(instance, at, found,
                                    self._health(found, firing, jobs_of.get(instance, ""))))
        self._known += [r.instance for r in readings if r.instance not in self._known]
        return readings or self._failed(at, "Prometheus has no yolo samples")

    def _failed(self, at: float, why: str) -> list[Reading]:
        if self._known:
            return [Reading(instance, at, error=why) for instance in self._known]
        return [Reading(self.url, at, error=why, placeholder=True)]

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        """The vector an instant query at ``at`` returns; FetchError if not one."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql, "time": f"{at:.3f}"})
        body = get(url, self.credentials, self.timeout_s, "application/json")
        try:
            answer = json.loads(body)
            result = answer["data"]["result"]
            if answer.get("status") != "success" or not isinstance(result, list):
                raise ValueError(answer.get("error", "not a vector"))
            return [r for r in result if isinstance(r, dict) and isinstance(r.get("metric"), dict)]
        except (ValueError, KeyError, TypeError) as error:
            raise FetchError(f"unreadable query answer ({str(error)[:60]})") from None

    def _health(self, samples: Mapping[str, Mapping[Labels, float]],
                firing: list[dict[str, Any]], job: str) -> dict[str, Any]:
        statuses = [_SEVERITY_STATUS.get(a["severity"], "degraded") for a in firing]
        modes = [dict(labels).get("mode") for labels, value in
                 samples.get(cat.MODE.prometheus_name, {}).items() if value == 1]
        return {"status": max(statuses, key=_STATUS_ORDER.index, default="healthy"),
                "reasons": sorted({f"{a['alertname']} is firing" for a in firing}),
                "service": job, "mode": modes[0] if modes else None,
                "context_health": dict(self._thresholds),
                "checks": {"alerts": {"firing": firing}}}


def _samples_query() -> str:
    names = "|".join(sorted(re.escape(name) for name in WANTED))
    return f'{{__name__=~"{names}"}}'


def _value(sample: Mapping[str, Any]) -> float:
    try:
        return float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return float("nan")


def _alert(sample: Mapping[str, Any]) -> dict[str, Any]:
    labels = {k: v for k, v in sample["metric"].items()
              if k not in ("__name__", "alertstate", "alertname", "severity")}
    return {"alertname": sample["metric"].get("alertname", "?"),
            "severity": sample["metric"].get("severity", "warning"), "labels": labels}
