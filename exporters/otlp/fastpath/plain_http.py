"""Which transport the OTLP/HTTP span and metric exporters send through.

:class:`~exporters.otlp.fastpath.span_transport.PlainHTTPTransport` is built on the SDK's
pluggable transport interface (``opentelemetry.exporter.http.transport``, from
opentelemetry-exporter-otlp-proto-http 1.45). It is imported only when an exporter is
made, so an older SDK still exports: through the SDK's own ``requests`` transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def init_with_plain_transport(init: Callable[..., None], kwargs: dict[str, Any],
                              signal: str) -> Any:
    """Run an SDK OTLP/HTTP exporter's ``__init__`` (``init``) with ``kwargs``, giving
    it the plain transport for ``signal`` when one applies and the caller chose
    neither a transport nor a ``requests`` session; return that transport (None:
    the SDK's own)."""
    transport = None
    if "_transport" not in kwargs and kwargs.get("session") is None:
        transport = plain_transport(kwargs.get("endpoint"), signal)
    if transport is not None:
        try:
            init(**kwargs, _transport=transport)
            return transport
        except TypeError:  # an SDK without pluggable transports
            pass
    init(**kwargs)
    return None


def plain_transport(endpoint: str | None, signal: str) -> Any:
    """The plain transport for ``endpoint`` and ``signal`` (traces, metrics), or None
    when the SDK's own transport must be used (see
    :func:`~exporters.otlp.fastpath.span_transport.plain_transport_for`) or is all there is."""
    try:
        from exporters.otlp.fastpath.span_transport import plain_transport_for
    except ImportError:  # an SDK before 1.45
        return None
    return plain_transport_for(endpoint, signal=signal)
