"""What each signal does to spans: the tracer's handlers.

One class per module, each built on the one before (a compiled class has one base):
:class:`~telemetry.tracing.handlers.state.TracerState` (the state they share) <-
:class:`~telemetry.tracing.handlers.handoffs.HandoffSignals` <-
:class:`~telemetry.tracing.handlers.calls.CallSignals` <-
:class:`~telemetry.tracing.handlers.live_signals.LiveSignals` <-
:class:`~telemetry.tracing.handlers.events.SpanSignals` <-
:class:`telemetry.tracing.tracer.SignalTracer`. Imports nothing itself.
"""
