"""What every background worker shares: health bookkeeping and a periodic timer.

Exporters, the alert webhook and anything else with a thread of its own report
through :class:`ExporterStatus` (shown in /health, failures counted in
``yolo_telemetry_exporter_errors_total``) and run on :class:`PeriodicWorker`.
They live in the core so that every layer above can use them.

A background loop must outlive anything that goes wrong in it, the wait included
(``Event.wait`` raises OverflowError for a timeout beyond what the platform's clock
holds, ``inf`` among them): a thread that died would leave /health saying
"starting" or "ok" for ever while nothing is exported. :class:`PeriodicWorker`
reports such a failure in /health and carries on; :func:`wait_interval` waits any
interval, however long.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator

log = logging.getLogger("telemetry.exporters")

#: The longest single wait :func:`wait_interval` asks for; longer ones are made of these.
MAX_WAIT_S = 86_400.0
#: After a failure outside its action's own handling, a loop waits this long before
#: it tries again, so a failure that repeats at once does not spin.
RETRY_AFTER_FAILURE_S = 1.0


def wait_interval(event: threading.Event, seconds: float) -> bool:
    """``event.wait(seconds)`` for any ``seconds``, ``inf`` included (waits for ever).

    Returns True as soon as ``event`` is set, False when ``seconds`` passed. A NaN
    interval raises ValueError (it would otherwise never wait at all).
    """
    if math.isnan(seconds):
        raise ValueError("the interval is NaN")
    if seconds <= MAX_WAIT_S:
        return event.wait(seconds)
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if event.wait(min(remaining, MAX_WAIT_S)):
            return True
    return False


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

    Whatever raises in the loop (the action, or the wait) is reported to ``status``
    (``failing`` in /health, with ``last_error``, and counted against ``aggregator``)
    and the loop carries on after :data:`RETRY_AFTER_FAILURE_S`: the thread only ends
    when stopped.
    """

    def __init__(self, name: str, interval_s: float, action: Any,
                 status: ExporterStatus | None = None,
                 aggregator: Aggregator | None = None) -> None:
        self.interval_s = interval_s
        self._action = action
        self._status = status
        self._aggregator = aggregator
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        failures = 0
        while True:
            try:
                if wait_interval(self._stopping, self.interval_s):
                    return
                self._action()
                failures = 0
            except Exception as error:  # the action reports its own failures; a backstop
                failures += 1
                report_loop_failure(self._thread.name, error, self._status, self._aggregator,
                                    first=failures == 1)
                if pause_after_failure(self._stopping):
                    return

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)


def pause_after_failure(event: threading.Event) -> bool:
    """Wait :data:`RETRY_AFTER_FAILURE_S`, or less if ``event`` is set (True then).

    The loop's own event may be what failed: then this sleeps instead, which bounds
    how fast the loop can fail without depending on the event.
    """
    try:
        return event.wait(RETRY_AFTER_FAILURE_S)
    except Exception:
        time.sleep(RETRY_AFTER_FAILURE_S)
        return event.is_set()


def report_loop_failure(loop: str, error: BaseException, status: ExporterStatus | None,
                        aggregator: Aggregator | None, first: bool = True) -> None:
    """Report an exception that escaped a background loop's own handling: in /health
    through ``status`` (when there is one) and in the log, with the traceback on the
    first of a run of failures only."""
    if status is not None:
        status.failed(error, aggregator)
    if first:
        log.error("background loop %s failed; it carries on", loop, exc_info=error)
    else:
        log.debug("background loop %s failed again", loop, exc_info=error)
