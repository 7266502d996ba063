"""Which export path the installed OpenTelemetry SDK allows, said once at start-up.

The HTTP fast path hands encoded bytes to the SDK exporters' HTTP client
(``_client.export``), which came with opentelemetry-exporter-otlp-proto-http 1.45.1
(README.md here lists every internal and its version). On an older SDK in the
otlp extra's range (1.44, the floor, which google-adk allows no later than) the
OTLP/HTTP exporters send through the SDK's own public ``export`` instead: the same
requests, built more slowly. The gRPC exporters take the fast path on every SDK in
the range. Either way spans and metrics are sent; what this module adds is that the
fallback is never silent: a log line the first time it is seen in the process, and
an ``export_path`` detail in the OTLP exporter's part of ``/health``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from importlib import metadata
from typing import Any

log = logging.getLogger("telemetry.exporters.otlp")

#: (signal, reason) pairs already logged in this process.
_logged: set[tuple[str, str]] = set()
_lock = threading.Lock()


@functools.cache
def http_client_available() -> bool:
    """Whether the SDK ships the OTLP HTTP client the fast path hands bytes to
    (``opentelemetry.exporter.otlp.common.http``, SDK 1.45.1 and later); looked up once."""
    try:
        return importlib.util.find_spec("opentelemetry.exporter.otlp.common.http") is not None
    except (ImportError, ValueError):
        return False


def sdk_version() -> str:
    """The installed opentelemetry-exporter-otlp-proto-http version (what the HTTP
    exporters come from), or ``unknown``."""
    try:
        return metadata.version("opentelemetry-exporter-otlp-proto-http")
    except metadata.PackageNotFoundError:
        return "unknown"


def fallback_reason(exporter: Any) -> str | None:
    """Why ``exporter`` (one of the fast path's OTLP exporters) sends through the SDK's
    own ``export``; None when it takes the fast path."""
    if getattr(exporter, "grpc", False) or getattr(exporter, "fast", True):
        return None
    client = getattr(exporter, "_client", None)
    if not callable(getattr(client, "export", None)):
        return (f"opentelemetry-exporter-otlp-proto-http {sdk_version()} has no HTTP "
                f"client taking encoded bytes (_client.export, 1.45.1 and later)")
    return (f"opentelemetry-exporter-otlp-proto-http {sdk_version()} lacks the exporter "
            f"metrics or request size limit the fast path reads")


def export_path(exporter: Any, signal: str) -> dict[str, str]:
    """The ``/health`` detail for one signal's exporter: ``{"export_path": "fast"}``, or
    ``{"export_path": "sdk", "fallback": <why>}``. The first time a fallback is seen in
    the process it is also logged, so an old SDK is noticed at start-up."""
    reason = fallback_reason(exporter)
    if reason is None:
        return {"export_path": "fast"}
    with _lock:
        first = (signal, reason) not in _logged
        _logged.add((signal, reason))
    if first:
        log.warning("OTLP %s: %s; sending through the SDK's own export (the same "
                    "requests, more slowly)", signal, reason)
    return {"export_path": "sdk", "fallback": reason}
