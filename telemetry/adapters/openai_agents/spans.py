"""What the OpenAI Agents SDK's span data says, read without importing the SDK: an
LLM call's tokens, our ``error_type`` for a span's error, a span's duration from its
own timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telemetry.adapters.base import token_count

#: SDK span error messages -> our error_type. A message not listed (some carry the
#: application's own text) becomes the exception class the SDK names, else "error".
ERROR_TYPES = {
    "Error running tool": "tool_error",
    "Error running tool (non-fatal)": "tool_error",
    "Error running Codex tool (non-fatal)": "tool_error",
    "Tool execution cancelled": "tool_cancelled",
    "Tool execution rejected": "tool_rejected",
    "Tool not found": "tool_not_found",
    "Invalid JSON provided": "invalid_json",
    "Max turns exceeded": "max_turns_exceeded",
    "Guardrail tripwire triggered": "guardrail_tripwire",
    "Multiple handoffs requested": "multiple_handoffs",
    "Error getting response": "model_error",
    "Error streaming response": "model_error",
    "Error in call_model_input_filter": "input_filter_error",
    "Error in agent run": "agent_error",
    "Invalid input filter": "input_filter_error",
    "Invalid input filter result": "input_filter_error",
}


def usage_tokens(usage: Any) -> tuple[int, int, int] | None:
    """(input, output, cached input) tokens from a span's usage (a dict, or the
    ``ResponseUsage`` of a ``Response``); None when it carries no tokens."""
    if usage is None:
        return None
    if isinstance(usage, dict):
        get = usage.get
        details = get("input_tokens_details")
        cached = get("cached_input_tokens")
    else:
        def get(name: str) -> Any:
            return getattr(usage, name, None)
        details = get("input_tokens_details")
        cached = None
    input_tokens, output_tokens = get("input_tokens"), get("output_tokens")
    if input_tokens is None and output_tokens is None:
        return None
    if cached is None:
        if isinstance(details, list):
            details = details[0] if details else None
        cached = (details.get("cached_tokens") if isinstance(details, dict)
                  else getattr(details, "cached_tokens", None))
    input_tokens, output_tokens = token_count(input_tokens), token_count(output_tokens)
    cached = token_count(cached)
    return input_tokens, output_tokens, min(cached, input_tokens)


def error_type_of(error: Any) -> str | None:
    """Our error_type for an SDK span error (``{"message", "data"}``), or None."""
    if not error:
        return None
    message = error.get("message") if isinstance(error, dict) else None
    known = ERROR_TYPES.get(message) if isinstance(message, str) else None
    if known is not None:
        return known
    data = error.get("data") if isinstance(error, dict) else None
    name = data.get("name") if isinstance(data, dict) else None
    if isinstance(name, str) and name.isidentifier() and len(name) <= 64:
        return name  # the exception class the SDK recorded
    return "error"


def iso_duration(span: Any) -> float:
    """A span's duration from the SDK's own ISO timestamps (for spans whose start this
    processor did not see); 0 when they are missing."""
    try:
        started = datetime.fromisoformat(span.started_at)
        ended = datetime.fromisoformat(span.ended_at)
    except (TypeError, ValueError):
        return 0.0
    return max((ended - started).total_seconds(), 0.0)
