"""StatsD exporter: periodic, batched datagrams (or TCP lines) to a StatsD daemon.

Entry module: :mod:`exporters.statsd.exporter`; line formats in
:mod:`~exporters.statsd.format`, timer values in :mod:`~exporters.statsd.timers`,
sockets in :mod:`~exporters.statsd.transport`.
"""

from exporters.statsd.exporter import StatsdExporter

__all__ = ["StatsdExporter"]
