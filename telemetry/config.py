"""Configuration: one YAML file, validated, with environment overrides.

Where the settings come from, later ones winning:

1. the file (``YOLO_TELEMETRY_CONFIG`` names it; else the embedded default),
2. OpenTelemetry's standard variables (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_*``...),
3. ``YOLO_TELEMETRY__<KEY>__<KEY>=value`` for any single key, e.g.
   ``YOLO_TELEMETRY__SERVER__PORT=9500`` or ``YOLO_TELEMETRY__EXPORTERS__STATSD__ENABLED=true``;
   the value is read as YAML, so numbers, booleans and lists work.

Every error names the file, the key path, what was expected and what was found.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from telemetry.alerting.definitions import AlertDefinition, AlertingConfig, effective_alerts
from telemetry.plugins import discover

ENV_CONFIG_PATH = "YOLO_TELEMETRY_CONFIG"
ENV_PREFIX = "YOLO_TELEMETRY__"


class ConfigError(Exception):
    """A user's configuration is wrong; the message says where and how."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BasicAuth(_Section):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


class AuthConfig(_Section):
    basic: BasicAuth | None = None
    bearer_token: str | None = Field(default=None, min_length=16)
    #: Leave /health/live open so orchestration probes need no credentials.
    allow_unauthenticated_live: bool = True


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

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError("expected an IP address or host name")
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
    timestamp_window_s: float = Field(default=86_400.0, gt=0)


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
    #: None: the built-in alerts; a list replaces them (see telemetry/alerting.py).
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


# -- environment ---------------------------------------------------------------


def _milliseconds_to_seconds(value: str) -> float:
    return float(value) / 1000.0


def _header_map(value: str) -> dict[str, str]:
    # Values are percent-encoded, as in W3C baggage (``Authorization=Bearer%20x``).
    pairs = (item.split("=", 1) for item in value.split(",") if "=" in item)
    return {unquote(key.strip()): unquote(val.strip()) for key, val in pairs}


def _sampler_ratio(value: str) -> float:
    return float(value)


#: OpenTelemetry's standard variables and the key each sets.
OTEL_ENVIRONMENT: dict[str, tuple[tuple[str, ...], Callable[[str], Any]]] = {
    "OTEL_SERVICE_NAME": (("service_name",), str),
    "OTEL_EXPORTER_OTLP_ENDPOINT": (("exporters", "otlp", "endpoint"), str),
    "OTEL_EXPORTER_OTLP_PROTOCOL": (("exporters", "otlp", "protocol"), str),
    "OTEL_EXPORTER_OTLP_HEADERS": (("exporters", "otlp", "headers"), _header_map),
    "OTEL_METRIC_EXPORT_INTERVAL": (("exporters", "otlp", "interval_s"), _milliseconds_to_seconds),
    "OTEL_EXPORTER_OTLP_TIMEOUT": (("exporters", "otlp", "timeout_s"), _milliseconds_to_seconds),
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": (("exporters", "otlp", "metrics_endpoint"), str),
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": (("exporters", "otlp", "traces_endpoint"), str),
    "OTEL_BSP_MAX_QUEUE_SIZE": (("tracing", "batch", "max_queue_size"), int),
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": (("tracing", "batch", "max_export_batch_size"), int),
    "OTEL_BSP_SCHEDULE_DELAY": (("tracing", "batch", "schedule_delay_ms"), int),
    "OTEL_BSP_EXPORT_TIMEOUT": (("tracing", "batch", "export_timeout_ms"), int),
    "OTEL_TRACES_SAMPLER": (("tracing", "sampler"), str),
    "OTEL_TRACES_SAMPLER_ARG": (("tracing", "sampler_ratio"), _sampler_ratio),
}


def _set_path(data: dict, path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value


def apply_environment(data: dict, environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Apply overrides in place; return which key each variable set, for messages."""
    origins: dict[tuple[str, ...], str] = {}
    for variable, (path, convert) in OTEL_ENVIRONMENT.items():
        if environ.get(variable):
            try:
                _set_path(data, path, convert(environ[variable]))
            except ValueError as error:
                raise ConfigError(f"environment {variable}: {error}") from None
            origins[path] = variable
    for variable, raw in sorted(environ.items()):
        if not variable.startswith(ENV_PREFIX):
            continue
        path = tuple(part.lower() for part in variable[len(ENV_PREFIX):].split("__") if part)
        if not path:
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_path(data, path, value)
        origins[path] = variable
    return origins


# -- loading -------------------------------------------------------------------


def default_yaml() -> str:
    """The embedded default config (also shipped as config/telemetry.yaml)."""
    return resources.files("telemetry").joinpath("default.yaml").read_text(encoding="utf-8")


def _read_yaml(text: str, source: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level, "
                          f"found {type(data).__name__}")
    return data


def read_file(path: str | os.PathLike) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from None
    return _read_yaml(text, str(path))


def _format_errors(error: ValidationError, source: str,
                   origins: dict[tuple[str, ...], str]) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(str(part) for part in item["loc"])
        key = ".".join(loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            expected = "no such key (check the spelling; see config/telemetry.yaml)"
        else:
            expected = item["msg"].removeprefix("Value error, ")
        found = item.get("input")
        origin = next((f" (set by {var})" for path, var in origins.items()
                       if loc[: len(path)] == path), "")
        detail = f"{source}: {key}: {expected}"
        if item["type"] != "missing":
            detail += f"; found {_shorten(found)}"
        lines.append(detail + origin)
    return "\n".join(lines)


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate(data: dict, source: str = "<config>",
             origins: dict[tuple[str, ...], str] | None = None) -> TelemetryConfig:
    try:
        config = config_model().model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_errors(error, source, origins or {})) from None
    config.source = source
    _check_consistency(config)
    return config


def _check_consistency(config: TelemetryConfig) -> None:
    server = config.server
    if config.debug.enabled and not server.is_loopback and server.auth is None:
        raise ConfigError(
            f"{config.source}: debug.enabled: debug endpoints on a non-loopback address "
            f"({server.host}) need server.auth; set server.auth or bind 127.0.0.1")
    if config.debug.slow.enabled and not config.debug.enabled:
        raise ConfigError(f"{config.source}: debug.slow.enabled: slow-operation capture "
                          f"needs debug.enabled: true as well")
    try:
        effective_alerts(config.alerts, config.alerting)
    except ValueError as error:
        raise ConfigError(f"{config.source}: {error}") from None


def load(source: str | os.PathLike | Mapping | TelemetryConfig | None = None,
         environ: Mapping[str, str] | None = None) -> TelemetryConfig:
    """Build a validated config from a path, a dict, a config object or nothing.

    With nothing, ``YOLO_TELEMETRY_CONFIG`` names the file, else the embedded
    default is used. Environment overrides apply to paths and dicts, not to a
    ready-made config object.
    """
    environ = os.environ if environ is None else environ
    if isinstance(source, TelemetryConfig):
        return source
    if source is None and environ.get(ENV_CONFIG_PATH):
        source = environ[ENV_CONFIG_PATH]
    if source is None:
        data, name = _read_yaml(default_yaml(), "<embedded default>"), "<embedded default>"
    elif isinstance(source, Mapping):
        data, name = _deep_copy(source), "<dict>"
    else:
        data, name = read_file(source), str(source)
    origins = apply_environment(data, environ)
    return validate(data, name, origins)


def _deep_copy(data: Mapping) -> dict:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}
