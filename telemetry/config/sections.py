"""The configuration model: one section per concern, and the whole of them.

Each section is a pydantic model that forbids unknown keys, finite numbers only and
no boolean where a number is expected. :func:`config_model` adds the ``exporters``
section, built from every installed exporter's own ``Config``
(:func:`telemetry.plugins.discover`); the alert sections are
:mod:`telemetry.alerting.definitions`'. Reading a file and the environment into it,
and the checks across sections, are :mod:`telemetry.config.loading`'s.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from telemetry.alerting.definitions import AlertDefinition, AlertingConfig
from telemetry.plugins import discover

#: Numeric annotations a YAML ``true``/``false`` must not be coerced into (``port: true``
#: would silently become port 1).
_NUMBER_TYPES = (int, float, int | None, float | None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and field.annotation in _NUMBER_TYPES:
            raise ValueError("expected a number, not a boolean")
        return value


class BasicAuth(_Section):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


class AuthConfig(_Section):
    basic: BasicAuth | None = None
    bearer_token: str | None = Field(default=None, min_length=16)
    #: Leave /health/live open so orchestration probes need no credentials.
    allow_unauthenticated_live: bool = True

    @model_validator(mode="after")
    def _some_credential(self) -> AuthConfig:
        # An auth section without credentials would accept no request at all: every
        # route but /health/live would answer 401 for good.
        if self.basic is None and self.bearer_token is None:
            raise ValueError("expected basic or bearer_token (an auth section without "
                             "credentials locks every route); remove server.auth for none")
        return self


class TlsConfig(_Section):
    cert_file: Path
    key_file: Path


class ServerConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)
    #: Try these ports in order and take the first free one (overrides ``port``);
    #: for several processes on one host sharing one config.
    port_range: tuple[int, int] | None = None
    tls: TlsConfig | None = None
    auth: AuthConfig | None = None
    #: Connections served at once; more are closed at once (each holds a thread).
    max_connections: int = Field(default=64, ge=1, le=10_000)
    #: A client must send a whole request (and finish a TLS handshake) within this
    #: time, or its connection is closed; also how long an idle kept-alive one lasts.
    request_timeout_s: float = Field(default=10.0, gt=0, le=3600)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError("expected an IP address or host name")
        return value

    @field_validator("port_range", mode="before")
    @classmethod
    def _no_boolean_ports(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and any(isinstance(v, bool) for v in value):
            raise ValueError("expected [first, last] port numbers, not booleans")
        return value

    @field_validator("port_range")
    @classmethod
    def _port_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1 <= value[0] <= value[1] <= 65535:
            raise ValueError("expected [first, last] with 1 <= first <= last <= 65535")
        return value

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class DiscoveryConfig(_Section):
    """Registration of this process for Prometheus ``file_sd_configs``."""

    #: Directory to write this process's target file in (None: do not register).
    file_sd_dir: Path | None = None
    #: Host name or address Prometheus should scrape (default: server.host, or the
    #: machine's host name when the server binds a wildcard address).
    advertise_host: str | None = None
    #: Extra target labels, e.g. {role: worker}.
    labels: dict[str, str] = Field(default_factory=dict)


SLOW_OPERATIONS = ("handoff", "decision", "context_refresh", "state_save", "state_load",
                   "workflow", "profiled")


class SlowCaptureConfig(_Section):
    """Stacks of operations slower than ``threshold_s``, kept for ``/debug/slow``."""

    enabled: bool = False
    threshold_s: float = Field(default=5.0, gt=0)
    operations: list[Literal[SLOW_OPERATIONS]] = ["handoff", "decision", "profiled"]
    #: The background sampler's period; it samples only threads that send signals.
    sample_interval_s: float = Field(default=0.05, ge=0.001, le=10.0)
    #: How far back samples are kept; longer operations are captured partially.
    window_s: float = Field(default=120.0, gt=0, le=3600.0)
    max_captures: int = Field(default=20, ge=1, le=1000)
    #: Slow operations past this rate are counted as dropped, not captured.
    max_per_minute: int = Field(default=10, ge=1)


class DebugConfig(_Section):
    """``/debug/*`` endpoints: off unless enabled here."""

    enabled: bool = False
    #: The longest ``/debug/profile?seconds=N`` accepted.
    profile_max_seconds: float = Field(default=60.0, gt=0, le=3600.0)
    #: Sampling period of ``/debug/profile`` (0.01: 100 samples a second, like py-spy
    #: and pprof; shorter periods are capped by the GIL's 5 ms switch interval anyway).
    profile_interval_s: float = Field(default=0.01, ge=0.001, le=1.0)
    slow: SlowCaptureConfig = SlowCaptureConfig()


class BatchConfig(_Section):
    max_queue_size: int = Field(default=2048, ge=1)
    max_export_batch_size: int = Field(default=512, ge=1)
    schedule_delay_ms: int = Field(default=5000, ge=1)
    export_timeout_ms: int = Field(default=30000, ge=1)


class TracingConfig(_Section):
    enabled: bool = True
    sampler: Literal[
        "always_on", "always_off", "traceidratio",
        "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
    ] = "parentbased_traceidratio"
    sampler_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    #: Open spans (workflows, agents, handoffs) tracked at once; the oldest expire first.
    max_open_spans: int = Field(default=10000, ge=1)
    #: An open span not closed within this time is ended and counted as abandoned.
    open_span_ttl_s: float = Field(default=3600.0, gt=0)
    #: Put free text (decision or rule descriptions, exception messages) in span
    #: attributes. Off by default: such text may carry prompt or context content.
    capture_content: bool = False
    #: ``gen_ai.provider.name`` on the GenAI spans the OTLP exporter sends
    #: (``openai``, ``anthropic``, ``aws.bedrock``...); the signals do not say it.
    genai_provider: str | None = Field(default=None, min_length=1, max_length=256)
    #: While a workflow, an agent activation or a decision block is open, it is the
    #: current OpenTelemetry span of the thread or task that opened it, so spans other
    #: instrumentation starts there are its children (docs/tracing.md).
    live_context: bool = True
    #: Share one tracer provider with other instrumentation: the application's global
    #: SDK provider makes telemetry's spans too, or, when it set none, telemetry's
    #: provider becomes the global one and exports theirs.
    global_provider: bool = True
    batch: BatchConfig = BatchConfig()


class WindowsConfig(_Section):
    error_rate_s: float = Field(default=300.0, gt=0)
    buckets: int = Field(default=30, ge=1, le=3600)


class LimitsConfig(_Section):
    max_series_per_metric: int = Field(default=1000, ge=1)
    max_label_length: int = Field(default=128, ge=8, le=4096)
    #: Drop label sets not updated for this long (None: keep them forever).
    stale_series_after_s: float | None = Field(default=None, gt=0)
    #: Accept a signal's ``timestamp`` only this close to now, either way (seconds);
    #: others are counted invalid as ``timestamp:out_of_range``.
    timestamp_window_s: float = Field(default=86_400.0, gt=0, le=2.0**53)


class ModelPrice(_Section):
    """What one model costs, in US dollars per million tokens of each type."""

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)
    #: Cached input tokens are a part of the input tokens, charged at this price
    #: instead of ``input_per_mtok``.
    cached_input_per_mtok: float | None = Field(default=None, ge=0)


class OperationsConfig(_Section):
    """Agent operations: loop and repeat detection, workflows tracked, LLM prices."""

    #: Handoffs a workflow remembers: a handoff back to an agent it left within
    #: them counts one loop (``yolo_handoff_loops_total``).
    loop_window: int = Field(default=4, ge=1, le=64)
    #: Identical tool calls (agent, tool, call_key) in a row that count as repeating.
    repeat_threshold: int = Field(default=3, ge=2, le=1_000_000)
    #: Workflows in flight tracked for ``yolo_workflow_oldest_start_timestamp_seconds``.
    max_workflows_in_flight: int = Field(default=10000, ge=1)
    #: Model -> prices, for an ``llm_called`` event without ``cost_usd``.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    def aggregator_settings(self) -> dict[str, Any]:
        """The :class:`~telemetry.aggregation.aggregator.Aggregator` keyword arguments
        these settings become (prices in USD per token)."""
        return {
            "loop_window": self.loop_window, "repeat_threshold": self.repeat_threshold,
            "max_workflows_in_flight": self.max_workflows_in_flight,
            "prices": {model: (price.input_per_mtok / 1e6, price.output_per_mtok / 1e6,
                               None if price.cached_input_per_mtok is None
                               else price.cached_input_per_mtok / 1e6)
                       for model, price in self.prices.items()},
        }


class HealthConfig(_Section):
    """Thresholds behind the /health status (see README, "How status is derived")."""

    context_tokens_warning: int = Field(default=7500, ge=1)
    context_tokens_critical: int = Field(default=9000, ge=1)


class TelemetryConfig(_Section):
    service_name: str = Field(default="yolo", min_length=1)
    server: ServerConfig = ServerConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    debug: DebugConfig = DebugConfig()
    exporters: Any = None  # replaced by a model built from the installed exporters
    tracing: TracingConfig = TracingConfig()
    windows: WindowsConfig = WindowsConfig()
    limits: LimitsConfig = LimitsConfig()
    health: HealthConfig = HealthConfig()
    operations: OperationsConfig = OperationsConfig()
    #: None: the built-in alerts; a list replaces them (telemetry/alerting/builtins.py).
    alerts: list[AlertDefinition] | None = None
    alerting: AlertingConfig = AlertingConfig()
    #: Where the config came from, for messages; not a key users set.
    source: str = Field(default="<defaults>", exclude=True)


def _exporters_model(exporter_classes: Mapping[str, type]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (cls.Config, cls.Config()) for name, cls in sorted(exporter_classes.items())
    }
    return create_model("ExportersConfig", __config__=ConfigDict(extra="forbid"), **fields)


def config_model() -> type[TelemetryConfig]:
    """TelemetryConfig whose ``exporters`` section knows every installed exporter."""
    exporters_model = _exporters_model(discover())
    return create_model(
        "TelemetryConfig", __base__=TelemetryConfig,
        exporters=(exporters_model, exporters_model()),
    )
