"""The installed distribution: its version, and the exporter plugins found by entry point.

The config (which validates each exporter's section with the plugin's own model) and
the runtime (which builds the enabled ones) both need the installed exporters; this
module finds them without importing the :mod:`exporters` package itself, so the core
never depends on the layer above it.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any

ENTRY_POINT_GROUP = "yolo_telemetry.exporters"
log = logging.getLogger("telemetry.exporters")


def package_version() -> str:
    """The installed yolo-telemetry version (``0+unknown`` when run from a bare tree)."""
    try:
        return version("yolo-telemetry")
    except PackageNotFoundError:
        return "0+unknown"


def discover() -> dict[str, type[Any]]:
    """Every exporter class installed, by entry-point name.

    A plugin that fails to import is logged and left out; it only becomes an error
    when the config enables it.
    """
    found: dict[str, type[Any]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry.name] = entry.load()
        except Exception as error:  # a broken third-party plugin must not stop the rest
            log.warning("exporter plugin %r could not be loaded: %s", entry.name, error)
    return found
