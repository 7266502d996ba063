"""Artefacts generated from the catalogue and the alerts: the Grafana dashboard and the
Prometheus rule and scrape files (``yolo-telemetry render``).

Entry module: :mod:`telemetry.artefacts.render`.
"""
