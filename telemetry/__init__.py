"""yolo-telemetry: telemetry and monitoring for multi-agent orchestrators.

An orchestrator only sends blinker signals (see :mod:`telemetry.signals`); this
package aggregates them once and exports to Prometheus, OTLP and StatsD::

    import telemetry
    with telemetry.start("config/telemetry.yaml") as tel:
        ...                                  # the orchestrator sends signals
        agent, system = tel.snapshot()
"""

from . import signals
from .config import ConfigError, TelemetryConfig
from .config import load as load_config
from .metrics import AgentMetrics, DurationSummary, SystemMetrics
from .profiling import profiled
from .runtime import Telemetry, package_version, start
from .signals import timed

__all__ = [
    "AgentMetrics",
    "ConfigError",
    "DurationSummary",
    "SystemMetrics",
    "Telemetry",
    "TelemetryConfig",
    "load_config",
    "package_version",
    "profiled",
    "signals",
    "start",
    "timed",
]
