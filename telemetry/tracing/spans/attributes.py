"""Span attribute names and the parent/start helpers shared by the signal handlers
(:mod:`telemetry.tracing.handlers.events`, :mod:`telemetry.tracing.handlers.handoffs`),
and attribute values from elsewhere: an exception's (as the SDK's ``record_exception``
writes them) and values other code sets on a live span, checked as OpenTelemetry
allows them.

Attribute names follow the OpenTelemetry GenAI conventions where one fits, ``yolo.*``
otherwise (docs/tracing.md lists them per span).
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from telemetry.tracing.spans.table import LATEST_TS, ns

if TYPE_CHECKING:
    from telemetry.tracing.spans.record import SpanStub

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


_SCALARS = (str, bool, int, float)


def clean_value(value: Any, limit: int) -> Any:
    """``value`` as an OpenTelemetry attribute value (a str cut at ``limit``, a bool,
    an int in 64 bits, a float, or a sequence of one of them), else None."""
    kind = type(value)
    if kind is str:
        return value[:limit]
    if kind is bool or kind is float:
        return value
    if kind is int:
        return value if -(1 << 63) <= value < (1 << 63) else None
    if kind in (tuple, list):
        items = [clean_value(item, limit) for item in value]
        kinds = {type(item) for item in items}
        if None in items or len(kinds) > 1 or (kinds and kinds.pop() not in _SCALARS):
            return None
        return tuple(items)
    return None


def exception_type(exception: BaseException) -> str:
    """``module.QualName`` as the SDK's record_exception spells ``exception.type``."""
    cls = type(exception)
    module = cls.__module__
    return f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__


def exception_attributes(exception: BaseException) -> dict[str, str]:
    """The attributes the SDK's ``Span.record_exception`` gives an exception event."""
    return {"exception.type": exception_type(exception),
            "exception.message": _encodable(str(exception)),
            "exception.stacktrace": _encodable("".join(traceback.format_exception(exception))),
            "exception.escaped": "False"}


def _encodable(text: str) -> str:
    """``text`` with lone surrogates as "?": an OSError about an undecodable file name
    carries one, and a string that cannot be encoded fails its whole batch."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")
