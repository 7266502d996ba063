"""What a span is and how one is made, whatever signal it comes from.

:mod:`~telemetry.tracing.spans.record` (open and finished spans),
:mod:`~telemetry.tracing.spans.builder` (sampling, ids, limits, processors),
:mod:`~telemetry.tracing.spans.table` (the open-span table) and
:mod:`~telemetry.tracing.spans.attributes` (names and values). Imports nothing itself:
the modules import the OpenTelemetry SDK and load only when tracing is on.
"""
