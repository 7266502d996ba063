"""The command line: exit codes and messages a user sees."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support import ROOT


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "telemetry", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=_clean_env())


def _clean_env() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("YOLO_TELEMETRY_CONFIG", "YOLO_TELEMETRY__", "OTEL_"))}


def test_check_config_accepts_the_shipped_file() -> None:
    result = run_cli("check-config", "config/telemetry.yaml")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize(("text", "key"), [
    ("server:\n  port: lots\n", "server.port"),
    ("tracing:\n  unknown_key: 1\n", "tracing.unknown_key"),
    ("server:\n  port: 65536\n", "server.port"),
    ("exporters:\n  statsd:\n    port: -1\n", "exporters.statsd.port"),
    ("alerting:\n  max_history_rows: 10\n", "alerting.max_history_rows"),
])
def test_check_config_rejects_bad_files_with_status_2(tmp_path: Path, text: str,
                                                      key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert f"{path}: {key}:" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_on_a_missing_file() -> None:
    result = run_cli("check-config", "/nonexistent/telemetry.yaml")
    assert result.returncode == 2
    assert "no such config file" in result.stderr


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("demo", "check-config"):
        assert command in result.stdout


def test_version_prints_the_version_and_the_build_on_stdout() -> None:
    from telemetry import compiled
    from telemetry.plugins import package_version

    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{package_version()} ({compiled.summary()})\n"


def test_demo_serves_metrics_and_health_then_stops() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "telemetry", "demo", "--port", "0", "--duration", "30",
         "--seed", "3", "--time-scale", "0.001"],
        cwd=ROOT, env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stdout:
            match = re.search(r"metrics: (http://\S+)/metrics", line)
            if match:
                url = match.group(1)
                break
        assert url, "the demo did not print where /metrics is"
        health = json.load(urllib.request.urlopen(f"{url}/health", timeout=10))
        assert health["state"] == "running"
        metrics = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
        assert "# TYPE yolo_handoffs_total counter" in metrics
    finally:
        process.terminate()  # SIGTERM: the demo stops cleanly
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_demo_with_port_in_use_exits_2() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demo", "--port", str(port), "--duration", "1")
    assert result.returncode == 2
    assert f"server.port: 127.0.0.1:{port} is already in use" in result.stderr


def _unreadable(tmp_path: Path, kind: str) -> Path:
    if kind == "directory":
        return tmp_path
    path = tmp_path / "telemetry.yaml"
    if kind == "invalid utf-8":
        path.write_bytes(b"server:\n  host: \xff\xfe\n")
    else:  # no permission
        import os
        if os.geteuid() == 0:
            pytest.skip("root reads files whatever their mode")
        path.write_text("server: {}\n")
        path.chmod(0)
    return path


@pytest.mark.parametrize("kind", ["directory", "invalid utf-8", "no permission"])
@pytest.mark.parametrize("command", ["check-config", "demo"])
def test_unreadable_config_file_exits_2_naming_the_file(tmp_path: Path, kind: str,
                                                        command: str) -> None:
    path = _unreadable(tmp_path, kind)
    args = ("check-config", str(path)) if command == "check-config" else (
        "demo", "--config", str(path), "--port", "0", "--workflows", "1")
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert f"{path}: cannot read the config file" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1  # one clear line


def test_render_dashboard_without_the_sdk_is_a_clear_error(tmp_path: Path) -> None:
    # A module named like the SDK's package that fails to import stands in for a
    # base install without the dashboards extra.
    fake = tmp_path / "grafana_foundation_sdk"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(name='grafana_foundation_sdk')\n")
    env = _clean_env()
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    result = subprocess.run([sys.executable, "-m", "telemetry", "render", "dashboard"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert result.returncode == 2
    assert "yolo-telemetry[dashboards]" in result.stderr
    assert "Traceback" not in result.stderr


# -- usage errors ---------------------------------------------------------------------


def test_no_command_prints_usage_on_stderr_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: yolo-telemetry")
    assert "choose a command" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--port", "99999"), "argument --port: expected a port from 0 to 65535"),
    (("--port", "-1"), "argument --port: expected a port from 0 to 65535"),
    (("--port", "http"), "argument --port: expected a port number"),
    (("--duration", "nan"), "argument --duration: expected a finite number"),
    (("--duration", "0"), "argument --duration: expected a finite number, more than 0"),
    (("--time-scale", "-1"), "argument --time-scale: expected a finite number, 0 or more"),
    (("--time-scale", "inf"), "argument --time-scale: expected a finite number"),
    (("--workflows", "0"), "argument --workflows: expected 1 or more"),
    (("--incident", "fire"), "argument --incident: invalid choice"),
])
def test_demo_refuses_bad_numbers_as_usage_errors(args: tuple[str, ...], message: str) -> None:
    # Bounded: before, --duration nan and --time-scale -1 ran forever.
    result = run_cli("demo", "--workflows", "1", *args, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# -- check-config ---------------------------------------------------------------------


@pytest.mark.parametrize(("server", "expected"), [
    ("port_range: [9500, 9510]", "server 127.0.0.1, first free port of 9500-9510"),
    ("port: 0", "server 127.0.0.1, any free port"),
    ("enabled: false", "server off"),
    ("port: 9500", "server 127.0.0.1:9500"),
])
def test_check_config_says_which_port_the_server_will_take(tmp_path: Path, server: str,
                                                           expected: str) -> None:
    path = tmp_path / "telemetry.yaml"
    path.write_text(f"server:\n  {server}\n")
    result = run_cli("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"{expected})")


def test_check_config_refuses_otlp_without_its_packages(tmp_path: Path) -> None:
    # A package named like OpenTelemetry's that fails to import stands in for an
    # install without the otlp extra; the same config is OK with it installed.
    path = tmp_path / "telemetry.yaml"
    path.write_text("exporters:\n  otlp:\n    enabled: true\n")
    assert run_cli("check-config", str(path)).returncode == 0
    fake = tmp_path / "opentelemetry"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(name='opentelemetry')\n")
    env = {**_clean_env(), "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    for args in (("check-config", str(path)),
                 ("demo", "--config", str(path), "--port", "0", "--workflows", "1")):
        result = subprocess.run([sys.executable, "-m", "telemetry", *args],
                                capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "yolo-telemetry[otlp]" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_the_modules_check_config_probes_are_the_exporters_own(protocol: str) -> None:
    import importlib.util

    from telemetry.cli.main import EXPORTER_MODULES
    from telemetry.config import load

    config = load({"exporters": {"otlp": {"enabled": True, "protocol": protocol}}},
                  environ={})
    modules = EXPORTER_MODULES["otlp"](config.exporters.otlp, config)
    assert any("metric" in m for m in modules) and any("span" in m for m in modules)
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_check_config_on_deeply_nested_yaml_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.yaml"
    path.write_text("server: " + "[" * 50000 + "]" * 50000 + "\n")
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert f"{path}: invalid YAML: nested too deeply" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_on_a_fifo_exits_2_without_blocking(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "telemetry.yaml"
    os.mkfifo(fifo)
    result = run_cli("check-config", str(fifo), timeout=30)  # before: blocked for good
    assert result.returncode == 2
    assert f"{fifo}: cannot read the config file: not a regular file" in result.stderr


def test_check_config_names_a_duplicate_key_and_its_line(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.yaml"
    path.write_text("server:\n  port: 9000\n  port: true\n")
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert f"{path}:3:3: invalid YAML: duplicate key 'port' (first given on line 2)" in (
        result.stderr)


# -- the demo: incidents and signals ------------------------------------------------


def test_demo_duration_is_real_time_even_midway_through_a_workflow() -> None:
    # In real time (the default scale) a workflow takes about a minute; --duration
    # must not wait for it to finish.
    import time

    started = time.monotonic()
    result = run_cli("demo", "--port", "0", "--duration", "2", "--quiet", "--seed", "4",
                     timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 20, f"--duration 2 took {elapsed:.1f}s"


def test_demo_writes_the_rules_of_the_alerts_it_evaluates(tmp_path: Path) -> None:
    import yaml

    rules_file = tmp_path / "demo-alerts.yml"
    result = run_cli("demo", "--port", "0", "--workflows", "1", "--time-scale", "0",
                     "--quiet", "--incident", "errors", "--write-rules", str(rules_file))
    assert result.returncode == 0, result.stderr
    assert "watch HighErrorRate fire and clear" in result.stdout
    rules = {rule["alert"]: rule
             for rule in yaml.safe_load(rules_file.read_text())["groups"][0]["rules"]}
    assert "[1m]" in rules["HighErrorRate"]["expr"] and rules["HighErrorRate"]["for"] == "30s"
    assert rules["ContextOverflow"]["for"] == "30s"


def test_sigterm_stops_the_demo_and_removes_its_file_sd_target(tmp_path: Path) -> None:
    import signal
    import time

    targets = tmp_path / "targets"
    targets.mkdir()
    config = tmp_path / "telemetry.yaml"
    config.write_text(f"discovery:\n  file_sd_dir: {targets}\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "telemetry", "demo", "--config", str(config), "--port", "0",
         "--quiet"], cwd=ROOT, env=_clean_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not list(targets.glob("*.json")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the demo never registered its target"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert list(targets.glob("*.json")) == []
    assert "Traceback" not in err
    assert "(telemetry stopped)" in out
