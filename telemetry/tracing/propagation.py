"""Carry a workflow's trace across processes in a handoff payload (W3C trace context).

Process A hands work to an agent in process B. A puts the trace context into the
payload it sends; B passes it back into its own signals, and B's spans continue A's
trace::

    # process A (after sending handoff_started for pm -> dev)
    payload = propagation.inject({"task": ...}, workflow_id=wf)
    queue.put(payload)                                   # any transport

    # process B
    payload = queue.get()
    signals.agent_activated.send(self, agent="dev", workflow_id=wf,
                                 **propagation.signal_fields(payload))

``inject`` picks the most specific open span the tracer holds for the workflow:
the latest open handoff, else the agent span, else the workflow span. Any signal
may carry the ``traceparent`` (and ``tracestate``) fields; the aggregator ignores
them and the tracer uses them as the parent of the span the signal opens.

A payload carries what the configured propagators write: ``OTEL_PROPAGATORS``,
read by OpenTelemetry's own :mod:`opentelemetry.propagate` (W3C trace context and
baggage by default; ``b3`` and others once their package is installed; ``none``
for nothing). A name that is not installed makes that module raise on import; it
is logged once and W3C trace context is used instead. The signals themselves always
take W3C ``traceparent``/``tracestate`` fields: :func:`signal_fields` turns what
another propagator wrote into them.

Safe to call whatever is installed or enabled: without OpenTelemetry or with
tracing off, ``inject`` leaves the payload as it is and ``extract`` returns None.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

TRACE_FIELDS = ("traceparent", "tracestate")

log = logging.getLogger("telemetry.tracing")

#: The W3C propagator used instead of an ``OTEL_PROPAGATORS`` that cannot be loaded.
_fallback: Any = None


def _propagator() -> Any:
    """The propagators ``OTEL_PROPAGATORS`` names, as OpenTelemetry's global textmap."""
    global _fallback
    if _fallback is not None:
        return _fallback
    try:
        from opentelemetry import propagate
    except ImportError:
        raise
    except Exception as error:  # a propagator not installed (ValueError) or failing to load
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        log.warning("OTEL_PROPAGATORS: %s; using W3C trace context", error)
        _fallback = TraceContextTextMapPropagator()
        return _fallback
    return propagate.get_global_textmap()


def inject(payload: MutableMapping[str, Any], workflow_id: str | None = None, *,
           agent: str | None = None) -> MutableMapping[str, Any]:
    """Add ``traceparent`` (and ``tracestate``) to ``payload`` in place and return it.

    With ``workflow_id`` the context is that of the workflow's current span in the
    running telemetry (see the module doc); otherwise, or if telemetry holds no span
    for it, the caller's current OpenTelemetry context is used, so code that already
    traces with OpenTelemetry can use the same helper.
    """
    try:
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        from telemetry.tracing.tracer import active_tracer
    except ImportError:
        return payload
    ctx = otel_context.get_current()
    tracer = active_tracer()
    if tracer is not None and workflow_id is not None:
        span_context = tracer.current_span_context(workflow_id, agent)
        if span_context is not None:  # the caller's baggage stays
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(span_context), ctx)
    _propagator().inject(payload, context=ctx)
    return payload


def extract(payload: Mapping[str, Any]) -> Any:
    """The OpenTelemetry ``Context`` a payload carries (for code using OpenTelemetry
    directly, e.g. ``opentelemetry.context.attach(extract(payload))``); None when
    OpenTelemetry is not installed. A payload without a valid context gives an empty
    one."""
    try:
        propagator = _propagator()
    except ImportError:
        return None
    carrier = {key: value for key, value in payload.items() if isinstance(value, str)}
    return propagator.extract(carrier)


def signal_fields(payload: Mapping[str, Any]) -> dict[str, str]:
    """The trace fields of a payload, to pass as keyword arguments to a signal: W3C
    ``traceparent``/``tracestate``, also when another propagator wrote the payload."""
    fields = {key: payload[key] for key in TRACE_FIELDS
              if isinstance(payload.get(key), str) and payload[key]}
    if fields or not any(isinstance(value, str) for value in payload.values()):
        return fields
    context = extract(payload)
    if context is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=context)
    return {key: carrier[key] for key in TRACE_FIELDS if carrier.get(key)}
