"""OTLP exporter: periodic push of the aggregates (and spans) to a collector."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from . import Exporter, ExporterConfig


class OtlpConfig(ExporterConfig):
    endpoint: str = "http://127.0.0.1:4318"
    protocol: Literal["grpc", "http/protobuf"] = "http/protobuf"
    headers: dict[str, str] = Field(default_factory=dict)
    metrics: bool = True
    traces: bool = True
    interval_s: float = Field(default=10.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)


class OtlpExporter(Exporter):
    name = "otlp"
    Config = OtlpConfig
