"""Adapters: one module per agent framework, turning its own hooks into our signals.

An adapter is an orchestrator on the framework's behalf: it sends the ``yolo.*``
signals of :mod:`telemetry.signals` and nothing else, so every exporter, alert,
dashboard panel and ``/health`` works for that framework unchanged. Each module
offers ``instrument(**options)`` returning an :class:`~telemetry.adapters.base.Instrumentation`
whose ``uninstrument()`` undoes it (the shape of OpenTelemetry instrumentors).

The framework itself is imported only by its adapter module, never here, so
``import telemetry`` works without any framework installed.
"""

from telemetry.adapters.base import AdapterEmitter, Instrumentation, ambient_trace_fields

__all__ = ["AdapterEmitter", "Instrumentation", "ambient_trace_fields"]
