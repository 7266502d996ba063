"""Where settings come from: the YAML file and the environment.

Kept apart from :mod:`telemetry.config` (the settings and their validation): this
is about the sources. A file is read only if it is a regular file (a FIFO would
block), as YAML with every key given once and nesting the parser can follow; the
environment's variables are mapped onto key paths (see :mod:`telemetry.config`).
"""

from __future__ import annotations

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


def _milliseconds_to_seconds(value: str) -> float:
    seconds = float(value) / 1000.0
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite number of milliseconds; found {value!r}")
    return seconds


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
