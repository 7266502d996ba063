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
