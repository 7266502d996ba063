"""Config loading: defaults, validation messages with file and key path, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.config import ConfigError, default_yaml, load
from tests.support import ROOT


def test_shipped_config_equals_the_embedded_default() -> None:
    assert (ROOT / "config" / "telemetry.yaml").read_text() == default_yaml()


def test_defaults_are_secure_and_match_the_design() -> None:
    config = load(None, environ={})
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 9464
    assert config.debug.enabled is False
    assert config.exporters.prometheus.enabled is True
    assert config.exporters.otlp.enabled is False
    assert config.exporters.statsd.enabled is False
    assert config.tracing.capture_content is False
    assert config.limits.max_series_per_metric == 1000


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "telemetry.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ("server:\n  port: 70000\n", "server.port: Input should be less than or equal to 65535"),
    ("server:\n  port: http\n", "server.port: Input should be a valid integer"),
    ("server:\n  prot: 9464\n", "server.prot: no such key"),
    ("exporters:\n  statsd:\n    flavor: graphite\n", "exporters.statsd.flavor: Input should be"),
    ("exporters:\n  kafka: {enabled: true}\n", "exporters.kafka: no such key"),
    ("limits:\n  max_series_per_metric: 0\n", "limits.max_series_per_metric"),
    ("- just\n- a list\n", "expected a mapping of settings at the top level, found list"),
])
def test_errors_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(path, environ={})
    message = str(raised.value)
    assert message.startswith(str(path))
    assert expected in message


def test_error_says_what_was_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"found 'http'"):
        load(_write(tmp_path, "server:\n  port: http\n"), environ={})


def test_invalid_yaml_points_at_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "server:\n  port: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+:\d+: invalid YAML"):
        load(path, environ={})


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path, environ={})  # a directory


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load(_write(tmp_path, ""), environ={}).server.port == 9464


def test_single_keys_are_overridden_from_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "server:\n  port: 9000\n")
    config = load(path, environ={
        "YOLO_TELEMETRY__SERVER__PORT": "9500",
        "YOLO_TELEMETRY__EXPORTERS__STATSD__ENABLED": "true",
        "YOLO_TELEMETRY__LIMITS__STALE_SERIES_AFTER_S": "3600",
    })
    assert config.server.port == 9500
    assert config.exporters.statsd.enabled is True
    assert config.limits.stale_series_after_s == 3600


def test_a_bad_override_names_its_variable() -> None:
    pattern = r"server\.port: .*\(set by YOLO_TELEMETRY__SERVER__PORT\)"
    with pytest.raises(ConfigError, match=pattern):
        load({}, environ={"YOLO_TELEMETRY__SERVER__PORT": "many"})


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "service_name: from-file\n")
    assert load(None, environ={"YOLO_TELEMETRY_CONFIG": str(path)}).service_name == "from-file"


def test_opentelemetry_standard_variables_are_honoured() -> None:
    config = load({}, environ={
        "OTEL_SERVICE_NAME": "orchestrator-7",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc,tenant=t1",
        "OTEL_METRIC_EXPORT_INTERVAL": "2500",
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
    })
    assert config.service_name == "orchestrator-7"
    otlp = config.exporters.otlp
    assert (otlp.endpoint, otlp.protocol) == ("http://127.0.0.1:4317", "grpc")
    assert otlp.headers == {"api-key": "abc", "tenant": "t1"}
    assert otlp.interval_s == 2.5
    assert (config.tracing.sampler, config.tracing.sampler_ratio) == ("traceidratio", 0.25)


def test_yolo_variables_win_over_otel_ones() -> None:
    config = load({}, environ={"OTEL_SERVICE_NAME": "a", "YOLO_TELEMETRY__SERVICE_NAME": "b"})
    assert config.service_name == "b"


def test_debug_beyond_loopback_requires_auth() -> None:
    with pytest.raises(ConfigError, match=r"debug\.enabled: .*need server\.auth"):
        load({"server": {"host": "0.0.0.0"}, "debug": {"enabled": True}}, environ={})
    config = load({"server": {"host": "0.0.0.0", "auth": {"bearer_token": "x" * 32}},
                   "debug": {"enabled": True}}, environ={})
    assert config.debug.enabled
