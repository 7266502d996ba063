"""Prometheus exporter: /metrics written from the aggregates at scrape time.

No prometheus_client call happens per event, and a scrape costs per series, not per
event: the exposition writer (:mod:`.exposition`) formats the cells the aggregator
copies. prometheus_client still chooses the format from the scraper's ``Accept``
header, and its encoder, over the collector of :mod:`.legacy`, is kept behind
:meth:`PrometheusExporter.render_with_prometheus_client` for comparison.
"""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporters import Exporter, ExporterConfig
from exporters.prometheus.exposition import ExpositionWriter
from exporters.prometheus.legacy import AggregatorCollector


class PrometheusConfig(ExporterConfig):
    enabled: bool = True


def negotiate(accept: str | None) -> tuple[bool, str]:
    """(OpenMetrics or not, the content type) for the scraper's ``Accept`` header, as
    prometheus_client decides them: OpenMetrics when it is asked for, else text 0.0.4."""
    _, content_type = choose_encoder(accept or "")
    return content_type.startswith("application/openmetrics-text"), content_type


class PrometheusExporter(Exporter):
    """Renders /metrics for the server; owns the writer's caches, and a registry
    holding the aggregator collector for prometheus_client's encoder."""

    name = "prometheus"
    Config = PrometheusConfig

    def __init__(self, config, aggregator, telemetry) -> None:
        super().__init__(config, aggregator, telemetry)
        self.writer = ExpositionWriter()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(AggregatorCollector(aggregator))

    def start(self) -> None:
        self.status.set_state("ok")

    def render(self, accept: str | None,
               names: Collection[str] | None = None) -> tuple[bytes, str]:
        """The exposition in the format the scraper asked for (OpenMetrics or text);
        with ``names`` (``name[]`` in the query), only the samples so named."""
        openmetrics, content_type = negotiate(accept)
        try:
            body = self.writer.write(self.aggregator.copy_series(),
                                     openmetrics=openmetrics, names=names)
        except Exception as error:
            self.status.failed(error, self.aggregator)
            raise
        self.status.succeeded()
        return body, content_type

    def render_with_prometheus_client(self, accept: str | None) -> tuple[bytes, str]:
        """The same exposition by prometheus_client's encoder (the path before the
        writer): the baseline of the scrape benchmark and of the equivalence tests."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
