"""Outbound alert notifications in Alertmanager's webhook format (version 4).

Whatever receives Alertmanager webhooks (chat bridges, on-call tools, a small
script) can receive the in-process evaluator's alerts unchanged. Alerts are
grouped by ``alertname``; a group is sent when an alert in it starts firing or
resolves, and again every ``repeat_interval_s`` while it fires.

Sending never blocks the evaluator: notifications go through a bounded queue to a
thread of their own. Each is tried once plus ``max_retries`` times with
exponential backoff (``backoff_s`` doubling up to ``max_backoff_s``) and a
``timeout_s`` per attempt, then dropped and counted
(``yolo_telemetry_dropped_total{component="alert_webhook"}``) and reported as an
exporter error, so a dead receiver costs a few requests, never a retry storm.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.parse
import urllib.request
from typing import Any

from telemetry.aggregation.aggregator import Aggregator
from telemetry.alerting.definitions import WebhookConfig
from telemetry.alerting.instances import AlertInstance, iso
from telemetry.workers import ExporterStatus, report_loop_failure, wait_interval

log = logging.getLogger("telemetry.alerts.webhook")
COMPONENT = "alert_webhook"
#: Alertmanager's "not ended" time for firing alerts.
ZERO_TIME = "0001-01-01T00:00:00Z"


def _without_userinfo(url: str) -> str:
    """The URL without ``user:password@``, for display."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def alert_payload(inst: AlertInstance, generator_url: str) -> dict[str, Any]:
    return {
        "status": "firing" if inst.state == "firing" else "resolved",
        "labels": dict(inst.labels),
        "annotations": dict(inst.annotations),
        "startsAt": iso(inst.active_since_wall),
        "endsAt": iso(inst.resolved_at) if inst.resolved_at is not None else ZERO_TIME,
        "generatorURL": generator_url,
        "fingerprint": inst.fingerprint,
    }


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    shared = dict(dicts[0])
    for other in dicts[1:]:
        shared = {k: v for k, v in shared.items() if other.get(k) == v}
    return shared


def group_payload(alertname: str, instances: list[AlertInstance], *, receiver: str,
                  external_url: str) -> dict[str, Any]:
    """One webhook message for the alerts of one group, as Alertmanager sends it."""
    generator = f"{external_url}/health" if external_url else ""
    alerts = [alert_payload(inst, generator) for inst in instances]
    firing = any(inst.state == "firing" for inst in instances)
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": {"alertname": alertname},
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": alerts,
    }


class WebhookNotifier:
    """Turns evaluator updates into queued webhook messages and sends them."""

    def __init__(self, config: WebhookConfig, aggregator: Aggregator, *,
                 external_url: str = "", receiver: str = "yolo") -> None:
        self.config = config
        self.aggregator = aggregator
        self.external_url = external_url
        self.receiver = receiver
        self.status = ExporterStatus(COMPONENT)
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=config.queue_size)
        self._last_sent: dict[str, float] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="telemetry-alert-webhook",
                                        daemon=True)
        self.sent = 0
        self.dropped = 0

    # -- called by the evaluator (must not block) --------------------------------

    def update(self, firing: list[AlertInstance], changed: list[AlertInstance],
               now: float) -> None:
        groups: dict[str, list[AlertInstance]] = {}
        for inst in firing:
            groups.setdefault(inst.name, []).append(inst)
        due = {inst.name for inst in changed
               if inst.state == "firing" or self.config.send_resolved}
        repeat = self.config.repeat_interval_s
        if repeat is not None:
            due |= {name for name in groups if now - self._last_sent.get(name, now) >= repeat}
        for name in sorted(due):
            members = groups.get(name, []) + [
                inst for inst in changed if inst.name == name and inst.state == "resolved"]
            if not members or (not self.config.send_resolved
                               and all(m.state == "resolved" for m in members)):
                continue
            self._last_sent[name] = now
            self.enqueue(group_payload(name, members, receiver=self.receiver,
                                       external_url=self.external_url))
        for name in list(self._last_sent):
            if name not in groups:
                del self._last_sent[name]

    def enqueue(self, payload: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self._drop("queue_full")

    # -- the sender thread -------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop retrying; send what is queued (one attempt each) within ``timeout_s``."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            try:
                payload = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            try:
                self._deliver(payload)
            except Exception as error:  # a bug outside the send itself: lose this one only
                report_loop_failure("telemetry-alert-webhook", error, self.status,
                                    self.aggregator)
                self._drop("send_failed")

    def _deliver(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        attempt = 0
        while True:
            try:
                self._post(body)
            except Exception as error:
                if attempt >= self.config.max_retries or self._stopping.is_set():
                    self.status.failed(error, self.aggregator)
                    self._drop("send_failed")
                    log.warning("alert webhook %s failed %d time(s), notification dropped: %s",
                                self.config.url, attempt + 1, error)
                    return
                delay = min(self.config.backoff_s * 2 ** attempt, self.config.max_backoff_s)
                attempt += 1
                if wait_interval(self._stopping, delay):  # any delay, inf included
                    continue  # stopping: one last attempt, then give up
            else:
                self.status.succeeded()
                self.sent += 1
                return

    def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "yolo-telemetry",
                   **self.config.headers}
        request = urllib.request.Request(self.config.url, data=body, headers=headers,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
            response.read(65536)

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        self.aggregator.count_dropped(COMPONENT, reason)

    def health(self) -> dict[str, Any]:
        """The ``alert_webhook`` entry of /health."""
        return {**self.status.as_dict(), "url": _without_userinfo(self.config.url),
                "sent": self.sent,
                "dropped": self.dropped, "queued": self._queue.qsize()}
