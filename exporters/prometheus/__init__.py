"""The Prometheus exporter: /metrics in the text format or OpenMetrics."""

from exporters.prometheus.exporter import PrometheusConfig, PrometheusExporter, negotiate
from exporters.prometheus.legacy import AggregatorCollector, to_metric_family

__all__ = ["AggregatorCollector", "PrometheusConfig", "PrometheusExporter", "negotiate",
           "to_metric_family"]
