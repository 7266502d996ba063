"""What every background worker shares: health bookkeeping and a periodic timer.

Exporters, the alert webhook and anything else with a thread of its own report
through :class:`ExporterStatus` (shown in /health, failures counted in
``yolo_telemetry_exporter_errors_total``) and run on :class:`PeriodicWorker`.
They live in the core so that every layer above can use them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator

log = logging.getLogger("telemetry.exporters")


class ExporterStatus:
    """Success and failure bookkeeping shared by all exporters, for /health.

    An exporter is ``failing`` from its first failed attempt until one succeeds;
    every failure is also counted in ``yolo_telemetry_exporter_errors_total``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.state = "starting"
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.consecutive_failures = 0
        self.exports = 0
        self.failures = 0

    def succeeded(self) -> None:
        with self._lock:
            self.state = "ok"
            self.last_success = time.time()
            self.consecutive_failures = 0
            self.exports += 1

    def failed(self, error: BaseException | str, aggregator: Aggregator | None = None) -> None:
        with self._lock:
            self.state = "failing"
            self.last_error = error if isinstance(error, str) else _describe(error)
            self.last_error_at = time.time()
            self.consecutive_failures += 1
            self.failures += 1
        if aggregator is not None:
            aggregator.count_exporter_error(self.name)

    def set_state(self, state: str) -> None:
        with self._lock:
            self.state = state

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "status": self.state,
                "last_success": self.last_success,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "consecutive_failures": self.consecutive_failures,
                "exports": self.exports,
                "failures": self.failures,
            }


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


class PeriodicWorker:
    """Calls ``action`` every ``interval_s`` on a daemon thread until stopped.

    Stopping wakes the thread at once (an Event, not a sleep) and joins it with a
    deadline, so shutdown is bounded even when ``action`` is stuck on a dead backend.
    """

    def __init__(self, name: str, interval_s: float, action: Any) -> None:
        self.interval_s = interval_s
        self._action = action
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self._action()
            except Exception:  # the action reports its own failures; this is a backstop
                log.exception("periodic %s failed", self._thread.name)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
