"""yolo-telemetry: telemetry and monitoring for multi-agent orchestrators.

An orchestrator only sends blinker signals (see :mod:`telemetry.signals`); this
package aggregates them once and exports to Prometheus, OTLP and StatsD::

    import telemetry
    with telemetry.start("config/telemetry.yaml") as tel:
        ...                                  # the orchestrator sends signals
        agent, system = tel.snapshot()
"""

from telemetry import signals
from telemetry.config import ConfigError, TelemetryConfig
from telemetry.config import load as load_config
from telemetry.metrics import AgentMetrics, DurationSummary, SystemMetrics
from telemetry.profiling import profiled
from telemetry.runtime import Telemetry, package_version, start
from telemetry.signals import timed

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
