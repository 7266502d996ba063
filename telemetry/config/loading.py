"""Loading the configuration: one YAML file, validated, with environment overrides.

Where the settings come from, later ones winning:

1. the file (``YOLO_TELEMETRY_CONFIG`` names it; else the embedded default),
2. OpenTelemetry's standard variables (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_*``...;
   :data:`telemetry.configsource.OTEL_ENVIRONMENT`). As the OpenTelemetry
   specification asks, an invalid value of one of these is logged and ignored, not
   an error: the setting keeps its value from the file, or its default,
3. ``YOLO_TELEMETRY__<KEY>__<KEY>=value`` for any single key, e.g.
   ``YOLO_TELEMETRY__SERVER__PORT=9500`` or ``YOLO_TELEMETRY__EXPORTERS__STATSD__ENABLED=true``;
   the value is read as YAML, so numbers, booleans and lists work.

Every error names the file, the key path, what was expected and what was found.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from pydantic import BaseModel, ValidationError

from telemetry.alerting.builtins import effective_alerts
from telemetry.config.sections import TelemetryConfig, config_model
from telemetry.configsource import (
    MAX_DURATION_S,
    ConfigError,
    InvalidSettings,
    read_file,
    read_yaml,
    validate_with_environment,
)

ENV_CONFIG_PATH = "YOLO_TELEMETRY_CONFIG"


def default_yaml() -> str:
    """The embedded default config (also shipped as config/telemetry.yaml)."""
    return resources.files("telemetry").joinpath("default.yaml").read_text(encoding="utf-8")


def _format_errors(error: ValidationError, source: str,
                   origins: dict[tuple[str, ...], str]) -> InvalidSettings:
    lines, variables = [], {}
    for item in error.errors():
        loc = tuple(str(part) for part in item["loc"])
        key = ".".join(loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            expected = "no such key (check the spelling; see config/telemetry.yaml)"
        else:
            expected = item["msg"].removeprefix("Value error, ")
        found = item.get("input")
        variable = next((var for path, var in origins.items() if loc[: len(path)] == path),
                        None)
        detail = f"{key}: {expected}"
        if item["type"] != "missing":
            detail += f"; found {_shorten(found)}"
        if variable is not None:
            variables.setdefault(variable, detail)
        lines.append(f"{source}: {detail}" + (f" (set by {variable})" if variable else ""))
    return InvalidSettings("\n".join(lines), variables)


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate(data: dict, source: str = "<config>",
             origins: dict[tuple[str, ...], str] | None = None) -> TelemetryConfig:
    try:
        config = config_model().model_validate(data)
    except ValidationError as error:
        raise _format_errors(error, source, origins or {}) from None
    except RecursionError:
        raise ConfigError(f"{source}: settings nested too deeply") from None
    config.source = source
    _check_finite(config, source, origins or {})
    _check_consistency(config)
    return config


#: ``MAX_DURATION_S``, the longest duration a ``*_s`` (or ``*_ms``) setting may have:
#: timer waits fail with OverflowError near 2**33 s; a year is longer than any sane
#: interval or window.

#: ``*_s`` settings that are never waited on, so the year does not bound them: the
#: accepted timestamp window only compares times (replaying old events may need a
#: wide one); its own model bounds it.
NOT_WAITED_ON = frozenset({"timestamp_window_s"})


def _numbers(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], float]]:
    """Every number in a validated config, with its key path."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _numbers(getattr(value, name), (*path, name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _numbers(item, (*path, str(index)))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path, value


def _check_finite(config: TelemetryConfig, source: str,
                  origins: dict[tuple[str, ...], str]) -> None:
    """Refuse infinite, NaN or absurdly long numbers, also in sections defined elsewhere.

    An infinite (or astronomically long) interval or window passes ``gt=0`` and then
    breaks a timer wait or a window computation at run time, far from the file that
    caused it.
    """
    for path, value in _numbers(config, ()):
        key = path[-1] if path else ""
        longest = (math.inf if key in NOT_WAITED_ON
                   else MAX_DURATION_S if key.endswith("_s")
                   else MAX_DURATION_S * 1000 if key.endswith("_ms") else math.inf)
        if math.isfinite(value) and value <= longest:
            continue
        variable = next((var for prefix, var in origins.items()
                         if path[: len(prefix)] == prefix), None)
        expected = ("a finite number" if not math.isfinite(value)
                    else f"at most {longest:.0f} (365 days)")
        detail = f"{'.'.join(path)}: expected {expected}; found {value!r}"
        raise InvalidSettings(f"{source}: {detail}" + (f" (set by {variable})" if variable
                                                        else ""),
                               {variable: detail} if variable else {})


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
        data, name = read_yaml(default_yaml(), "<embedded default>"), "<embedded default>"
    elif isinstance(source, Mapping):
        data, name = _deep_copy(source), "<dict>"
    else:
        data, name = read_file(source), str(source)
    return validate_with_environment(
        data, environ, lambda settings, origins: validate(settings, name, origins), _deep_copy)


def _deep_copy(data: Mapping) -> dict:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}
