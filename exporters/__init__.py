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

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from telemetry.plugins import ENTRY_POINT_GROUP, discover
from telemetry.workers import ExporterStatus, PeriodicWorker

if TYPE_CHECKING:
    from telemetry.aggregation.aggregator import Aggregator
    from telemetry.config import TelemetryConfig


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


__all__ = ["ENTRY_POINT_GROUP", "Exporter", "ExporterConfig", "ExporterStatus", "PeriodicWorker",
           "discover"]
