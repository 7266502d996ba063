"""The OTLP exporter's config section (``exporters.otlp``) and where each signal goes.

The OTLP exporter specification's rules: one endpoint, protocol, headers and timeout
for both signals, each replaceable per signal (``metrics_*``, ``traces_*``), and the
specification's default collector address per protocol. ``OTEL_EXPORTER_OTLP_*``
variables reach these keys through :mod:`telemetry.configsource`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from exporters import ExporterConfig

Signal = Literal["metrics", "traces"]
Protocol = Literal["grpc", "http/protobuf"]

#: The OTLP specification's default collector address per protocol.
DEFAULT_ENDPOINTS = {"grpc": "http://127.0.0.1:4317", "http/protobuf": "http://127.0.0.1:4318"}


class OtlpConfig(ExporterConfig):
    #: Infinite or NaN intervals pass ``gt=0`` and then break the export timer.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    #: Collector address. HTTP: the base URL (``/v1/metrics`` and ``/v1/traces`` are
    #: appended). gRPC: ``http://host:4317`` (plain text) or ``https://...`` (TLS).
    #: None: the specification's default for the protocol (port 4318, gRPC 4317).
    endpoint: str | None = None
    protocol: Protocol = "http/protobuf"
    headers: dict[str, str] = Field(default_factory=dict)
    metrics: bool = True
    traces: bool = True
    interval_s: float = Field(default=10.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    #: Full URLs overriding ``endpoint`` for one signal (used as given, no path added).
    metrics_endpoint: str | None = None
    traces_endpoint: str | None = None
    #: Per-signal protocol and headers, replacing ``protocol`` and ``headers`` for it.
    metrics_protocol: Protocol | None = None
    traces_protocol: Protocol | None = None
    metrics_headers: dict[str, str] | None = None
    traces_headers: dict[str, str] | None = None
    #: Per-signal export timeouts, replacing ``timeout_s`` for that signal.
    metrics_timeout_s: float | None = Field(default=None, gt=0)
    traces_timeout_s: float | None = Field(default=None, gt=0)
    #: ``delta`` (or ``lowmemory``): counters and histograms are sent as the change
    #: since the last export that succeeded; gauges stay as they are.
    temporality_preference: Literal["cumulative", "delta", "lowmemory"] = "cumulative"

    @field_validator("endpoint", "metrics_endpoint", "traces_endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("expected a URL such as http://127.0.0.1:4318")
        return value

    @property
    def delta(self) -> bool:
        return self.temporality_preference != "cumulative"

    def signal_protocol(self, signal: Signal) -> Protocol:
        explicit = self.metrics_protocol if signal == "metrics" else self.traces_protocol
        return explicit or self.protocol

    def signal_timeout(self, signal: Signal) -> float:
        """The signal's own timeout when set, else ``timeout_s``."""
        explicit = self.metrics_timeout_s if signal == "metrics" else self.traces_timeout_s
        return explicit or self.timeout_s

    def signal_headers(self, signal: Signal) -> dict[str, str]:
        """The signal's own headers when set (the OTLP exporter spec: they replace the
        generic ones), else ``headers``."""
        explicit = self.metrics_headers if signal == "metrics" else self.traces_headers
        return dict(self.headers if explicit is None else explicit)

    def signal_endpoint(self, signal: Signal) -> str:
        """Where one signal goes, following the OTLP exporter spec's rules."""
        explicit = self.metrics_endpoint if signal == "metrics" else self.traces_endpoint
        if explicit:
            return explicit
        protocol = self.signal_protocol(signal)
        base = self.endpoint or DEFAULT_ENDPOINTS[protocol]
        if protocol == "grpc":
            return base
        return f"{base.rstrip('/')}/v1/{signal}"
