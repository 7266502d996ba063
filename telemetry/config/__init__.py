"""Configuration: one YAML file, validated, with environment overrides.

The model is :mod:`telemetry.config.sections`; reading a file, OpenTelemetry's
variables and ``YOLO_TELEMETRY__*`` overrides into it, with errors that name the file
and the key, is :mod:`telemetry.config.loading`. Both are read through this package:
``from telemetry.config import load, TracingConfig``.
"""

from telemetry.config.loading import (
    ENV_CONFIG_PATH,
    NOT_WAITED_ON,
    default_yaml,
    load,
    validate,
)
from telemetry.config.sections import (
    SLOW_OPERATIONS,
    AuthConfig,
    BasicAuth,
    BatchConfig,
    DebugConfig,
    DiscoveryConfig,
    HealthConfig,
    LimitsConfig,
    ModelPrice,
    OperationsConfig,
    ServerConfig,
    SlowCaptureConfig,
    TelemetryConfig,
    TlsConfig,
    TracingConfig,
    WindowsConfig,
    config_model,
)
from telemetry.configsource import ConfigError

__all__ = [
    "ENV_CONFIG_PATH", "NOT_WAITED_ON", "SLOW_OPERATIONS", "AuthConfig", "BasicAuth",
    "BatchConfig", "ConfigError", "DebugConfig", "DiscoveryConfig", "HealthConfig",
    "LimitsConfig", "ModelPrice", "OperationsConfig", "ServerConfig", "SlowCaptureConfig",
    "TelemetryConfig", "TlsConfig", "TracingConfig", "WindowsConfig", "config_model",
    "default_yaml", "load", "validate",
]
