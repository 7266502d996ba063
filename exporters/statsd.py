"""StatsD exporter: periodic, batched push of counter deltas, gauges and timers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from . import Exporter, ExporterConfig


class StatsdConfig(ExporterConfig):
    host: str = "127.0.0.1"
    port: int = Field(default=8125, ge=1, le=65535)
    prefix: str = "yolo"
    flavor: Literal["etsy", "dogstatsd", "telegraf"] = "etsy"
    flush_interval_s: float = Field(default=10.0, gt=0)
    max_packet_bytes: int = Field(default=1432, ge=64, le=65507)


class StatsdExporter(Exporter):
    name = "statsd"
    Config = StatsdConfig
