"""Where settings come from: the YAML file and the environment.

Kept apart from :mod:`telemetry.config` (the settings and their validation): this
is about the sources. A file is read only if it is a regular file (a FIFO would
block), as YAML with every key given once and nesting the parser can follow; the
environment's variables are mapped onto key paths (see :mod:`telemetry.config`). An
``OTEL_*`` variable with a value it cannot take is logged and ignored, as the
OpenTelemetry specification asks (:func:`validate_with_environment`).
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

ENV_PREFIX = "YOLO_TELEMETRY__"


class ConfigError(Exception):
    """A user's configuration is wrong; the message says where and how."""


class InvalidSettings(ConfigError):
    """A validation error, with the environment variables that set keys in error
    (each with its problem), so that invalid ``OTEL_*`` values can be ignored."""

    def __init__(self, message: str, variables: dict[str, str]) -> None:
        super().__init__(message)
        self.variables = variables


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    Plain YAML keeps the last of two equal keys silently, so a setting written twice
    (the second copy perhaps in another part of a long file) would be ignored
    without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *anchor" merges; explicit keys may override merged ones
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line "
                    f"{first.start_mark.line + 1})", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str, source: str) -> dict:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply to be a config "
                          f"file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level, "
                          f"found {type(data).__name__}")
    return data


def read_file(path: str | os.PathLike) -> dict:
    """The YAML mapping in ``path``; only regular files are read.

    A FIFO, socket or device would block or never end, so those are refused
    before anything opens them.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise ConfigError(f"{path}: cannot read the config file: {kind}")
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from None
    return read_yaml(text, str(path))


# -- environment ---------------------------------------------------------------

log = logging.getLogger("telemetry.config")

#: What a converter returns when the variable's value changes nothing.
UNSET: Any = object()

#: The longest interval or timeout an ``OTEL_*`` variable may give (as the config's).
MAX_DURATION_S = 365 * 86400.0


def _milliseconds_to_seconds(value: str) -> float:
    seconds = float(value) / 1000.0
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite number of milliseconds; found {value!r}")
    return seconds


def _positive_interval(value: str) -> float:
    """``OTEL_METRIC_EXPORT_INTERVAL``: milliseconds, more than 0 and at most a year."""
    seconds = _milliseconds_to_seconds(value)
    if not 0 < seconds <= MAX_DURATION_S:
        raise ValueError(f"expected milliseconds between 1 and a year; found {value!r}")
    return seconds


def _key_values(value: str) -> dict[str, str]:
    # W3C baggage style, values percent-encoded (``Authorization=Bearer%20x``).
    pairs = (item.split("=", 1) for item in value.split(",") if "=" in item)
    return {unquote(key.strip()): unquote(val.strip()) for key, val in pairs}


def _protocol(value: str) -> str:
    if value.strip() not in ("grpc", "http/protobuf"):
        raise ValueError(f"expected grpc or http/protobuf; found {value!r}")
    return value.strip()


def _sampler(value: str) -> str:
    name = value.strip().lower()
    if name not in SAMPLERS:
        raise ValueError(f"expected one of {', '.join(SAMPLERS)}; found {value!r}")
    return name


def _sampler_ratio(value: str) -> float:
    ratio = float(value)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"expected a ratio between 0 and 1; found {value!r}")
    return ratio


def _temporality(value: str) -> str:
    preference = value.strip().lower()
    if preference not in ("cumulative", "delta", "lowmemory"):
        raise ValueError(f"expected cumulative, delta or lowmemory; found {value!r}")
    return preference


def _exporter_switch(value: str) -> Any:
    """``OTEL_{TRACES,METRICS}_EXPORTER``: ``none`` turns the signal off; ``otlp`` is
    what this exporter does anyway; other exporters are not part of this package."""
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    if names == ["none"]:
        return False
    others = [name for name in names if name != "otlp"]
    if others:
        raise ValueError(f"only otlp or none are supported here; found {value!r}")
    return UNSET


def _sdk_disabled(value: str) -> Any:
    """``OTEL_SDK_DISABLED``: ``true`` (any case) turns OTLP metrics and traces off."""
    flag = value.strip().lower()
    if flag not in ("true", "false"):
        raise ValueError(f"expected true or false; found {value!r}")
    return False if flag == "true" else UNSET


def _resource_service_name(value: str) -> Any:
    """``service.name`` of ``OTEL_RESOURCE_ATTRIBUTES`` (the SDK reads the rest)."""
    name = _key_values(value).get("service.name", "")
    return name or UNSET


#: The ``OTEL_TRACES_SAMPLER`` names the tracer implements (``tracing.sampler``).
SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on",
            "parentbased_always_off", "parentbased_traceidratio")

_OTLP = ("exporters", "otlp")

#: OpenTelemetry's standard variables and the key each sets, in order: a later one
#: wins over an earlier one (``OTEL_SERVICE_NAME`` over ``OTEL_RESOURCE_ATTRIBUTES``).
#: An invalid value is logged and ignored, as the specification asks; the setting
#: keeps its value from the file or its default.
OTEL_ENVIRONMENT: tuple[tuple[str, tuple[str, ...], Callable[[str], Any]], ...] = (
    ("OTEL_RESOURCE_ATTRIBUTES", ("service_name",), _resource_service_name),
    ("OTEL_SERVICE_NAME", ("service_name",), str),
    ("OTEL_SDK_DISABLED", (*_OTLP, "metrics"), _sdk_disabled),
    ("OTEL_SDK_DISABLED", (*_OTLP, "traces"), _sdk_disabled),
    ("OTEL_METRICS_EXPORTER", (*_OTLP, "metrics"), _exporter_switch),
    ("OTEL_TRACES_EXPORTER", (*_OTLP, "traces"), _exporter_switch),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", (*_OTLP, "endpoint"), str),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", (*_OTLP, "protocol"), _protocol),
    ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", (*_OTLP, "metrics_protocol"), _protocol),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", (*_OTLP, "traces_protocol"), _protocol),
    ("OTEL_EXPORTER_OTLP_HEADERS", (*_OTLP, "headers"), _key_values),
    ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", (*_OTLP, "metrics_headers"), _key_values),
    ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", (*_OTLP, "traces_headers"), _key_values),
    ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", (*_OTLP, "temporality_preference"),
     _temporality),
    ("OTEL_METRIC_EXPORT_INTERVAL", (*_OTLP, "interval_s"), _positive_interval),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", (*_OTLP, "timeout_s"), _milliseconds_to_seconds),
    ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", (*_OTLP, "metrics_timeout_s"),
     _milliseconds_to_seconds),
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", (*_OTLP, "traces_timeout_s"),
     _milliseconds_to_seconds),
    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", (*_OTLP, "metrics_endpoint"), str),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", (*_OTLP, "traces_endpoint"), str),
    ("OTEL_BSP_MAX_QUEUE_SIZE", ("tracing", "batch", "max_queue_size"), int),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", ("tracing", "batch", "max_export_batch_size"), int),
    ("OTEL_BSP_SCHEDULE_DELAY", ("tracing", "batch", "schedule_delay_ms"), int),
    ("OTEL_BSP_EXPORT_TIMEOUT", ("tracing", "batch", "export_timeout_ms"), int),
    ("OTEL_TRACES_SAMPLER", ("tracing", "sampler"), _sampler),
    ("OTEL_TRACES_SAMPLER_ARG", ("tracing", "sampler_ratio"), _sampler_ratio),
)


def is_otel_variable(variable: str) -> bool:
    """An OpenTelemetry variable: an invalid value is ignored with a warning."""
    return variable.startswith("OTEL_")


def warn_ignored(variable: str, value: str, problem: str) -> None:
    log.warning("environment %s=%r: %s; ignored, the setting keeps its value from the "
                "file or its default", variable, value, problem)


def _set_path(data: dict, path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value


def apply_environment(data: dict, environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Apply overrides in place; return which key each variable set, for messages.

    An ``OTEL_*`` variable whose value cannot be read is logged and skipped (the
    OpenTelemetry specification: warn and use the default); a ``YOLO_TELEMETRY__*``
    one is the user's own config, so its errors stay errors (in validation).
    """
    origins: dict[tuple[str, ...], str] = {}
    warned: set[str] = set()
    for variable, path, convert in OTEL_ENVIRONMENT:
        raw = environ.get(variable)
        if not raw:
            continue
        try:
            value = convert(raw)
        except ValueError as error:
            if variable not in warned:
                warned.add(variable)
                warn_ignored(variable, raw, str(error).removeprefix("could not convert "))
            continue
        if value is not UNSET:
            _set_path(data, path, value)
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


def validate_with_environment(data: dict, environ: Mapping[str, str],
                              validate: Callable[[dict, dict[tuple[str, ...], str]], Any],
                              copy: Callable[[dict], dict]) -> Any:
    """``validate`` (settings, origins) of a ``copy`` of ``data`` with the environment
    applied.

    A key in error that an ``OTEL_*`` variable set is not an error: the variable is
    logged and ignored, and the rest validated again (the OpenTelemetry
    specification's "warn and use the default"). Errors of the file or of
    ``YOLO_TELEMETRY__*`` overrides are raised.
    """
    ignored: set[str] = set()
    while True:
        candidate = copy(data)
        origins = apply_environment(candidate, {key: value for key, value in environ.items()
                                                if key not in ignored})
        try:
            return validate(candidate, origins)
        except InvalidSettings as error:
            otel = {var: detail for var, detail in error.variables.items()
                    if is_otel_variable(var) and var not in ignored}
            if not otel:
                raise
            for variable, detail in sorted(otel.items()):
                warn_ignored(variable, environ[variable], detail)
            ignored.update(otel)
