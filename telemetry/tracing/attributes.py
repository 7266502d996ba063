"""Span attribute names and the parent/start helpers shared by the signal handlers
(:mod:`telemetry.tracing.events`, :mod:`telemetry.tracing.handoffs`).

Attribute names follow the OpenTelemetry GenAI conventions where one fits, ``yolo.*``
otherwise (docs/tracing.md lists them per span).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from telemetry.tracing.table import LATEST_TS, ns

if TYPE_CHECKING:
    from telemetry.tracing.record import SpanStub

# Attribute names: OpenTelemetry GenAI conventions where one fits, yolo.* otherwise.
OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
CONVERSATION_ID = "gen_ai.conversation.id"
WORKFLOW_NAME = "gen_ai.workflow.name"
HANDOFF_SOURCE = "gen_ai.agent.handoff.source.name"
HANDOFF_TARGET = "gen_ai.agent.handoff.target.name"
ERROR_TYPE = "error.type"
WORKFLOW_ID = "yolo.workflow.id"
WORKFLOW_OUTCOME = "yolo.workflow.outcome"
FROM_AGENT = "yolo.handoff.from_agent"
TO_AGENT = "yolo.handoff.to_agent"
DECISION_TYPE = "yolo.decision.type"
SAFETY_RULE = "yolo.safety.rule"
CONTEXT_TOKENS = "yolo.context.tokens"
CONTEXT_ITEMS = "yolo.context.items"
STATE_SIZE = "yolo.state.size"

#: A parent for a span: the span (None: a root) and the earliest start it allows
#: (epoch s): a child does not start before a local parent. A duration longer than
#: the parent has been open means the sender's clocks disagree, and a child sticking
#: out of its parent helps no one.
Parent = tuple["SpanStub | None", float]
NO_PARENT: Parent = (None, 0.0)


def start_ns(start: float, floor: float) -> int:
    """A leaf's start in epoch ns: ``start``, not before ``floor``, within OTLP's range."""
    if start < floor:
        start = floor
    return int(start * 1e9) if 0.0 <= start <= LATEST_TS else ns(start)
