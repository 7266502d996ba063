"""The OTLP/HTTP span exporter with the tracer's fast encoding.

:class:`FastHttpSpanExporter` is the SDK's ``OTLPSpanExporter`` (same endpoint,
headers, TLS, compression, retries, environment variables) that also takes the
tracer's finished tuples (:meth:`~FastHttpSpanExporter.export_records`), serialized
by :class:`~exporters.otlp.fastpath.span_encoding.SpanEncoder`. It hands the bytes to the
SDK's HTTP client, which is internal to the SDK: with an SDK that has no such
client, or for a batch the encoder does not handle, the spans go through the SDK's
own ``export`` instead (slower, same result). SDK spans (``export``) always do.
``tests/unit/exporters/otlp/test_span_encoding.py`` fails if the fast path is not taken.

For a plain ``http://`` endpoint the SDK's client sends through
:class:`~exporters.otlp.fastpath.span_transport.PlainHTTPTransport` rather than ``requests``
(see that module for when, and why; :mod:`exporters.otlp.fastpath.plain_http` for what an older
SDK uses).

Imports the OTLP HTTP exporter: import it only when tracing over HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from exporters.otlp.fastpath.plain_http import init_with_plain_transport
from exporters.otlp.fastpath.span_encoding import SpanEncoder, Unsupported, sdk_request
from telemetry.tracing.spans.record import to_readable

log = logging.getLogger("telemetry.exporters.otlp")


class FastHttpSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (HTTP) sending :class:`SpanEncoder`'s bytes."""

    def __init__(self, **kwargs: Any) -> None:
        #: The plain transport (None: the SDK's own), which can report answers.
        self.plain_transport = init_with_plain_transport(super().__init__, kwargs, "traces")
        self.encoder = SpanEncoder()
        client = getattr(self, "_client", None)
        #: The SDK's HTTP client takes serialized bytes (as in SDK 1.45).
        self.fast = callable(getattr(client, "export", None))

    def span_writer(self, origin: Any) -> Any:
        """What writes a span of ``origin`` as it ends (see
        :meth:`SpanEncoder.span_writer`); None when the SDK's client takes no bytes."""
        return self.encoder.span_writer(origin) if self.fast else None

    def export_records(self, spans: Sequence[Any]) -> SpanExportResult:
        """Send finished tuples (:mod:`telemetry.tracing.spans.record`) and spans
        written as they ended (bytes, only when :attr:`fast`)."""
        if not self.fast or getattr(self, "_shutdown", False):
            # not fast: nothing was written (no writer); shut down: the SDK refuses
            return self.export([to_readable(span) for span in spans if type(span) is tuple])
        try:
            data = self.encoder.encode_request(spans)
        except Unsupported:
            data = sdk_request(self.encoder, spans)
        limit = getattr(self, "_max_request_size", 0) or 0
        if 0 < limit < len(data):
            log.warning("dropping a span batch of %d bytes: over max_request_size (%d)",
                        len(data), limit)
            return SpanExportResult.FAILURE
        result = self._client.export(data)
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE
