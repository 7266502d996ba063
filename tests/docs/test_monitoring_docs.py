"""docs/monitoring.md stays true: generated tables in sync, every command run.

Each ``$ command`` line of the guide has a runner here that executes it (with the
ports, paths and targets a test needs substituted); a command without a runner, or a
runner whose command left the guide, fails the suite.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from telemetry import Telemetry, load_config
from telemetry.alerting.builtins import DEFAULT_ALERTS
from telemetry.artefacts.render import render
from tests.support.backends import free_port, wait_until
from tests.support.monitoring_tools import ROOT, assert_ok, require_tool, run_tool

GUIDE = ROOT / "docs/monitoring.md"
TEXT = GUIDE.read_text(encoding="utf-8")


def documented_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```console\n(.*?)```", TEXT, re.DOTALL):
        commands += [line.strip()[2:] for line in block.splitlines()
                     if line.strip().startswith("$ ")]
    return commands


def generated_block(name: str) -> str:
    match = re.search(rf"<!-- {name}: [^\n]*-->\n(.*?)<!-- end {name} -->", TEXT, re.DOTALL)
    assert match, f"no generated {name} block in {GUIDE}"
    return match.group(1)


def yaml_examples() -> list[dict]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", TEXT,
                                                          re.DOTALL)]


def test_the_metric_table_is_the_catalogue() -> None:
    assert generated_block("metrics-table") == render("metrics"), (
        "run `yolo-telemetry render metrics` and paste it into docs/monitoring.md")


def test_the_alert_table_is_the_built_in_alerts() -> None:
    assert generated_block("alert-table") == render("alert-table", {}), (
        "run `yolo-telemetry render alert-table` and paste it into docs/monitoring.md")


def test_every_built_in_alert_is_explained() -> None:
    explained = re.findall(r"^#### (\w+)$", TEXT, re.MULTILINE)
    assert explained == [alert.name for alert in DEFAULT_ALERTS]


def test_the_yaml_examples_are_valid_config() -> None:
    examples = yaml_examples()
    assert len(examples) >= 2
    for example in examples:
        load_config(example, environ={})


def test_the_first_hour_is_covered() -> None:
    """What a new user reaches for first: another port, the dashboards extra, Debian's
    alerts page, and why two error ratios differ."""
    assert "--port 9500" in TEXT and "YOLO_TELEMETRY__SERVER__PORT" in TEXT
    assert "pip install 'yolo-telemetry[dashboards]'" in TEXT
    assert "http://127.0.0.1:9090/classic/alerts" in TEXT
    explained = TEXT[TEXT.index("*Error ratio per agent* panel and the snapshot"):]
    assert "agent_error_rate" in explained[:600] and "handoffs" in explained[:600]


def test_every_incident_is_in_the_guide() -> None:
    from telemetry.cli.incidents import ALERT_OF

    for kind, alert in ALERT_OF.items():
        assert re.search(rf"^\| `{kind}` \|.*\| {alert} \(", TEXT, re.MULTILINE), kind


def test_the_trace_layout_is_linked() -> None:
    assert "(tracing.md)" in TEXT
    assert "## Layout" in (GUIDE.parent / "tracing.md").read_text(encoding="utf-8")


# -- running the documented commands -------------------------------------------------


def cli(*args: str, cwd: Path = ROOT, timeout: float = 60) -> str:
    """Run ``yolo-telemetry ARGS`` as the installed script would (python -m telemetry),
    with this checkout's code whatever the working directory."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run([sys.executable, "-m", "telemetry", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout, check=False)
    return assert_ok(result)


def flag(argv: list[str], name: str, value: str) -> list[str]:
    """``argv`` with ``--name=...`` replaced by ``--name=value`` (it must be there)."""
    assert any(a.startswith(f"--{name}=") for a in argv), f"--{name} not in {argv}"
    return [f"--{name}={value}" if a.startswith(f"--{name}=") else a for a in argv]


class Server:
    """A documented server command running in the background until the test ends."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self.handle = log.open("wb")
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=self.handle,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def get(self, url: str) -> Any:
        assert self.process.poll() is None, self.log.read_text()
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.handle.close()


def run_demo(command: str, tmp_path: Path, start: Callable[..., Telemetry]) -> None:
    # Runs until Ctrl-C as documented; bounded here, on a free port.
    output = cli(*shlex.split(command)[1:], "--port", "0", "--duration", "1", "--quiet",
                 "--time-scale", "0")
    assert "metrics: http://127.0.0.1:" in output and "workflows" in output


def run_demo_incident(command: str, tmp_path: Path, start: Callable[..., Telemetry]) -> None:
    # The incident's own timing is tested on a simulated clock (test_demo_story.py);
    # here, that the command runs and writes rules Prometheus accepts.
    output = cli(*shlex.split(command)[1:], "--port", "0", "--workflows", "1", "--quiet",
                 "--time-scale", "0", cwd=tmp_path)
    assert "watch HighErrorRate fire and clear" in output
    rules = tmp_path / "demo-alerts.yml"
    assert "[1m]" in rules.read_text()
    assert "SUCCESS" in assert_ok(run_tool("promtool", "check", "rules", str(rules)))


def run_prometheus(command: str, tmp_path: Path, start: Callable[..., Telemetry]) -> None:
    tel = start()
    shipped = (ROOT / "config/prometheus/prometheus.yml").read_text()
    assert '"127.0.0.1:9464"' in shipped
    (tmp_path / "prometheus.yml").write_text(
        shipped.replace('"127.0.0.1:9464"', f'"127.0.0.1:{tel.server.port}"'))
    (tmp_path / "yolo-alerts.yml").write_text(
        (ROOT / "config/prometheus/yolo-alerts.yml").read_text())
    port = free_port()
    argv = shlex.split(command)
    argv = flag(argv, "config.file", str(tmp_path / "prometheus.yml"))
    argv = flag(argv, "web.listen-address", f"127.0.0.1:{port}")
    argv = flag(argv, "storage.tsdb.path", str(tmp_path / "data"))
    argv[0] = require_tool(argv[0])
    server = Server(argv, tmp_path / "prometheus.log")
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        groups = wait_until(lambda: server.get(f"{api}/rules")["data"]["groups"], 30,
                            what="rules loaded")
        expected = yaml.safe_load(render("alerts", {}))["groups"][0]
        assert [g["name"] for g in groups] == [expected["name"]]
        assert [(r["name"], r["query"]) for r in groups[0]["rules"]] == [
            (r["alert"], r["expr"]) for r in expected["rules"]]
        # Scraping is shown with a 1s interval in test_monitoring_prometheus.py; here,
        # that the shipped config points at the URL and labels the dashboard filters on.
        (target,) = wait_until(lambda: server.get(f"{api}/targets")["data"]["activeTargets"],
                               30, what="target")
        assert target["scrapeUrl"] == f"http://127.0.0.1:{tel.server.port}/metrics"
        assert target["labels"] == {"job": "yolo", "instance": f"127.0.0.1:{tel.server.port}"}
        alertmanagers = wait_until(
            lambda: server.get(f"{api}/alertmanagers")["data"]["activeAlertmanagers"], 30,
            what="alertmanager configured")
        assert alertmanagers[0]["url"] == "http://127.0.0.1:9093/api/v2/alerts"
    finally:
        server.stop()


def run_alertmanager(command: str, tmp_path: Path, start: Callable[..., Telemetry]) -> None:
    port = free_port()
    argv = shlex.split(command)
    argv = flag(argv, "web.listen-address", f"127.0.0.1:{port}")
    argv = flag(argv, "storage.path", str(tmp_path / "alertmanager"))
    assert "--cluster.listen-address=" in argv  # no gossip port on every interface
    argv[0] = require_tool(argv[0])
    server = Server(argv, tmp_path / "alertmanager.log")
    try:
        status = wait_until(lambda: server.get(f"http://127.0.0.1:{port}/api/v2/status"), 30,
                            what="alertmanager ready")
        loaded = yaml.safe_load(status["config"]["original"])
        assert loaded["route"]["receiver"] == "yolo-webhook"
        assert status["cluster"]["status"] == "disabled"
    finally:
        server.stop()


def run_tool_as_documented(command: str, tmp_path: Path,
                           start: Callable[..., Telemetry]) -> None:
    name, *args = shlex.split(command)
    output = assert_ok(run_tool(name, *args))
    assert "SUCCESS" in output


def run_render_to_committed(command: str, tmp_path: Path,
                            start: Callable[..., Telemetry]) -> None:
    args = shlex.split(command)[1:]
    committed = ROOT / args[args.index("-o") + 1]
    args[args.index("-o") + 1] = str(tmp_path / committed.name)
    cli(*args)
    assert (tmp_path / committed.name).read_text() == committed.read_text()


def run_render_table(command: str, tmp_path: Path, start: Callable[..., Telemetry]) -> None:
    name = {"metrics": "metrics-table", "alert-table": "alert-table"}[shlex.split(command)[-1]]
    assert cli(*shlex.split(command)[1:]) == generated_block(name)


def _my_config(tmp_path: Path) -> Path:
    """my-telemetry.yaml: the guide's own extra/disable example."""
    example = next(e for e in yaml_examples() if "extra" in e.get("alerting", {}))
    path = tmp_path / "my-telemetry.yaml"
    path.write_text(yaml.safe_dump(example))
    return path


def run_check_config(command: str, tmp_path: Path, start: Callable[..., Telemetry]) -> None:
    _my_config(tmp_path)
    assert "my-telemetry.yaml: OK" in cli(*shlex.split(command)[1:], cwd=tmp_path)


def run_render_custom(command: str, tmp_path: Path, start: Callable[..., Telemetry]) -> None:
    _my_config(tmp_path)
    cli(*shlex.split(command)[1:], cwd=tmp_path)
    rules = yaml.safe_load((tmp_path / "my-alerts.yml").read_text())["groups"][0]["rules"]
    names = [rule["alert"] for rule in rules]
    assert "AnalystErrors" in names and "SafetyBlockSurge" not in names
    assert_ok(run_tool("promtool", "check", "rules", str(tmp_path / "my-alerts.yml")))


def run_curl_health(command: str, tmp_path: Path, start: Callable[..., Telemetry]) -> None:
    tel = start()
    argv = [a.replace("127.0.0.1:9464", f"127.0.0.1:{tel.server.port}")
            for a in shlex.split(command)]
    argv[0] = require_tool(argv[0])
    document = json.loads(assert_ok(subprocess.run(argv, capture_output=True, text=True,
                                                   timeout=30, check=False)))
    assert document["status"] in ("healthy", "degraded")
    assert document["checks"]["alerts"]["status"] in ("starting", "ok")
    assert "context_health" in document and "reasons" in document


RUNNERS: dict[str, Callable[[str, Path, Callable[..., Telemetry]], None]] = {
    "yolo-telemetry demo": run_demo,
    "yolo-telemetry demo --incident errors --write-rules demo-alerts.yml": run_demo_incident,
    "prometheus --config.file=config/prometheus/prometheus.yml "
    "--web.listen-address=127.0.0.1:9090 --storage.tsdb.path=data/prometheus": run_prometheus,
    "prometheus-alertmanager --config.file=config/alertmanager/alertmanager.yml "
    "--web.listen-address=127.0.0.1:9093 --cluster.listen-address= "
    "--storage.path=data/alertmanager": run_alertmanager,
    "promtool check config config/prometheus/prometheus.yml": run_tool_as_documented,
    "promtool check rules config/prometheus/yolo-alerts.yml": run_tool_as_documented,
    "promtool test rules tests/support/promtool/alerts_test.yml": run_tool_as_documented,
    "amtool check-config config/alertmanager/alertmanager.yml": run_tool_as_documented,
    "yolo-telemetry render alerts -o config/prometheus/yolo-alerts.yml":
        run_render_to_committed,
    "yolo-telemetry render dashboard -o config/grafana/yolo-overview.json":
        run_render_to_committed,
    "yolo-telemetry render metrics": run_render_table,
    "yolo-telemetry render alert-table": run_render_table,
    "yolo-telemetry check-config my-telemetry.yaml": run_check_config,
    "yolo-telemetry render alerts --config my-telemetry.yaml -o my-alerts.yml":
        run_render_custom,
    "curl -s http://127.0.0.1:9464/health": run_curl_health,
}


def test_every_documented_command_has_a_runner() -> None:
    assert sorted(documented_commands()) == sorted(RUNNERS)


@pytest.mark.parametrize("command", sorted(RUNNERS))
def test_documented_command(command: str, tmp_path: Path,
                            start_telemetry: Callable[..., Telemetry]) -> None:
    RUNNERS[command](command, tmp_path, start_telemetry)
