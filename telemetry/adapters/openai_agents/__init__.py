"""OpenAI Agents SDK adapter (:mod:`telemetry.adapters.openai_agents.processor`)."""

from telemetry.adapters.openai_agents.processor import *  # noqa: F403
from telemetry.adapters.openai_agents.processor import (
    FRAMEWORK,
    MAX_SPANS_PER_TRACE,
    MAX_TRACES,
    TelemetryProcessor,
    instrument,
)

__all__ = ["FRAMEWORK", "MAX_SPANS_PER_TRACE", "MAX_TRACES", "TelemetryProcessor", "instrument"]
