"""Configuration: the model (:mod:`telemetry.config.sections`), re-exported here."""

from telemetry.config.sections import *  # noqa: F403
from telemetry.config.sections import (  # the names read elsewhere as telemetry.config.X
    ENV_CONFIG_PATH,
    AuthConfig,
    BatchConfig,
    ConfigError,
    DebugConfig,
    HealthConfig,
    ServerConfig,
    SlowCaptureConfig,
    TelemetryConfig,
    TracingConfig,
    default_yaml,
    load,
    validate,
)
