"""Serving: the HTTP server, the /health document and file_sd registration.

Entry module: :mod:`telemetry.serving.server` (:class:`TelemetryServer`).
"""
