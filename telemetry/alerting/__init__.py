"""Alerting: alert definitions, in-process evaluation, generated Prometheus rules.

Entry modules: :mod:`telemetry.alerting.definitions` (the config models and built-in
alerts), :mod:`telemetry.alerting.evaluator` (the evaluation thread behind /health),
:mod:`telemetry.alerting.rules` (Prometheus rule files).
"""
