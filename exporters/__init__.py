"""Exporters: one module per backend behind one small interface.

An exporter is a class registered in the ``yolo_telemetry.exporters`` entry-point
group, so a third party can ship one in its own distribution::

    [project.entry-points."yolo_telemetry.exporters"]
    mybackend = "mypackage.exporter:MyExporter"

and enable it from YAML (``exporters: {mybackend: {enabled: true}}``) without any
change here. An exporter module must import cheaply: keep heavy client libraries
inside :meth:`Exporter.start`, so an uninstalled extra only matters when enabled.
"""

from __future__ import annotations

import logging
import threading
import time
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.config import TelemetryConfig

ENTRY_POINT_GROUP = "yolo_telemetry.exporters"
log = logging.getLogger("telemetry.exporters")


class ExporterConfig(BaseModel):
    """Base of every exporter's config section; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False


class Exporter:
    """The interface every exporter implements.

    Lifecycle: ``__init__`` (no I/O) -> :meth:`start` -> any number of
    :meth:`flush` -> :meth:`stop` (flushes, idempotent). Push exporters run their own
    timer (:class:`PeriodicWorker` does it); pull exporters read the aggregator when
    scraped. None of them runs code per event.
    """

    name: ClassVar[str] = "exporter"
    Config: ClassVar[type[ExporterConfig]] = ExporterConfig
    #: The Telemetry handle's id (``instance_id`` in /health), set before :meth:`start`;
    #: push exporters send it as ``service.instance.id``. Empty when built standalone.
    instance_id: str = ""

    def __init__(self, config: Any, aggregator: Aggregator, telemetry: TelemetryConfig) -> None:
        self.config = config
        self.aggregator = aggregator
        self.telemetry = telemetry
        self.status = ExporterStatus(self.name)

    def start(self) -> None:
        """Open connections and start timers."""

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Send what is pending now; True when it was delivered."""
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Flush and release everything; must be safe to call twice."""

    def health(self) -> dict[str, Any]:
        """This exporter's entry in the ``checks`` section of /health."""
        return self.status.as_dict()


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


def discover() -> dict[str, type[Exporter]]:
    """Every exporter class installed, by entry-point name.

    A plugin that fails to import is logged and left out; it only becomes an error
    when the config enables it.
    """
    found: dict[str, type[Exporter]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry.name] = entry.load()
        except Exception as error:  # a broken third-party plugin must not stop the rest
            log.warning("exporter plugin %r could not be loaded: %s", entry.name, error)
    return found
