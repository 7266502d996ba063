"""A real Prometheus on loopback, and promtool checks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.backends.common import (
    DEFAULT_TIMEOUT,
    LOOPBACK,
    T,
    _http_get,
    _http_post,
    _owns_port,
    _Process,
    _start_with_retries,
    free_port,
    require_backend,
    wait_until,
)

# --------------------------------------------------------------------------- Prometheus


def _prometheus_binary() -> str | None:
    if os.access("/usr/bin/prometheus", os.X_OK):
        return "/usr/bin/prometheus"
    return shutil.which("prometheus")


def _promtool_binary() -> str | None:
    if os.access("/usr/bin/promtool", os.X_OK):
        return "/usr/bin/promtool"
    return shutil.which("promtool")


def _scalar(value: str) -> float:
    return float(value)  # Prometheus sends "NaN", "+Inf", "-Inf", which float() accepts


@dataclass
class PrometheusServer:
    """A running Prometheus; every method talks to its real HTTP API."""

    url: str
    port: int
    config_path: Path
    data_dir: Path
    log_path: Path
    _process: _Process = field(repr=False)

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>`` and return the ``data`` member, raising on API errors."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        status, body = _http_get(url, timeout=10.0)
        payload = json.loads(body.decode("utf-8"))
        if status != 200 or payload.get("status") != "success":
            raise RuntimeError(f"Prometheus API {path} failed ({status}): {payload}")
        return payload["data"]

    def query(self, promql: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the result list (``{"metric": {...}, "value": [t, "v"]}``).

        Scalar and string results are wrapped as a single result with empty labels, so
        callers can treat every answer as a list.
        """
        data = self.api("query", query=promql, time=at)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_value(self, promql: str) -> float | None:
        """The single numeric value of ``promql`` now, or None when there is no sample.

        Raises ValueError if the query yields several series: a test should say which one.
        """
        result = self.query(promql)
        if not result:
            return None
        if len(result) > 1:
            labels = [r.get("metric") for r in result]
            raise ValueError(f"{promql!r} returned {len(result)} series: {labels}")
        return _scalar(result[0]["value"][1])

    def wait_for(
        self,
        condition: str | Callable[[], T],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Any:
        """Wait until a PromQL query has a non-empty result, or a callable returns truthy.

        A query such as ``'foo_total{job="yolo"} == 3'`` therefore waits for a value, not
        just for the series. Returns the query result (or the callable's value).
        """
        if isinstance(condition, str):
            promql = condition

            def check() -> Any:
                self._process.check_alive()
                return self.query(promql)

            return wait_until(check, timeout, what=f"PromQL {promql!r}")

        def check_callable() -> Any:
            self._process.check_alive()
            return condition()

        return wait_until(check_callable, timeout, what=f"Prometheus condition {condition!r}")

    def targets(self, state: str = "active") -> list[dict[str, Any]]:
        """Scrape targets (``state`` is "active", "dropped" or "any")."""
        data = self.api("targets", state=state)
        if state == "dropped":
            return list(data.get("droppedTargets", []))
        if state == "any":
            return list(data.get("activeTargets", [])) + list(data.get("droppedTargets", []))
        return list(data.get("activeTargets", []))

    def wait_for_targets_up(
        self, count: int = 1, timeout: float = DEFAULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` targets exist and every active one is healthy."""

        def all_up() -> list[dict[str, Any]] | None:
            self._process.check_alive()
            targets = self.targets()
            if len(targets) >= count and all(t.get("health") == "up" for t in targets):
                return targets
            return None

        return wait_until(all_up, timeout, what=f"{count} Prometheus target(s) up")

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) from ``/api/v1/alerts``."""
        return list(self.api("alerts").get("alerts", []))

    def rules(self, rule_type: str | None = None) -> list[dict[str, Any]]:
        """Rule groups from ``/api/v1/rules`` (``rule_type`` "alert" or "record" filters)."""
        return list(self.api("rules", type=rule_type).get("groups", []))

    def reload(self) -> None:
        """Ask Prometheus to re-read its config and rule files (``--web.enable-lifecycle``)."""
        status, body = _http_post(f"{self.url}/-/reload")
        if status != 200:
            raise RuntimeError(f"Prometheus reload failed ({status}): {body!r}")

    @staticmethod
    def write_file_sd(
        path: Path | str, targets: Sequence[str], labels: Mapping[str, str] | None = None
    ) -> None:
        """Write a file_sd target list atomically, so Prometheus never reads a half file."""
        path = Path(path)
        entries = [{"targets": list(targets), "labels": dict(labels or {})}]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(entries))
        tmp.replace(path)

    def log(self) -> str:
        """Everything Prometheus logged, for diagnosing a failed test."""
        return self._process.log_text()


@contextlib.contextmanager
def prometheus_server(
    tmp_path: Path,
    targets: Sequence[str],
    *,
    rule_files: Sequence[Path | str] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    file_sd_path: Path | str | None = None,
    job_name: str = "yolo",
    metrics_path: str = "/metrics",
    extra_args: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[PrometheusServer]:
    """Run Prometheus on 127.0.0.1 scraping ``targets`` ("host:port") as job ``job_name``.

    ``file_sd_path`` adds a ``file_sd_configs`` entry for that file (write it with
    :meth:`PrometheusServer.write_file_sd`); it may be used instead of, or as well as,
    static targets. Rule files are referenced by absolute path. Yields once ``/-/ready``
    answers 200.
    """
    binary = _prometheus_binary()
    require_backend(
        "prometheus", binary is not None, "no prometheus binary (apt install prometheus)"
    )
    assert binary is not None
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=tmp_path))
    data_dir = workdir / "data"
    config_path = workdir / "prometheus.yml"
    log_path = workdir / "prometheus.log"

    scrape: dict[str, Any] = {
        "job_name": job_name,
        "metrics_path": metrics_path,
        "scrape_interval": scrape_interval,
        "scrape_timeout": scrape_interval,
    }
    if targets:
        scrape["static_configs"] = [{"targets": list(targets)}]
    if file_sd_path is not None:
        scrape["file_sd_configs"] = [
            {"files": [str(Path(file_sd_path).resolve())], "refresh_interval": "1s"}
        ]
    if not targets and file_sd_path is None:
        scrape["static_configs"] = []
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [scrape],
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    ports: list[int] = []

    def make() -> _Process:
        port = free_port()
        ports.append(port)
        argv = [
            binary,
            f"--config.file={config_path}",
            f"--web.listen-address={LOOPBACK}:{port}",
            f"--storage.tsdb.path={data_dir}",
            "--web.enable-lifecycle",
            f"--web.console.templates={workdir}",
            f"--web.console.libraries={workdir}",
            "--log.level=info",
            *extra_args,
        ]
        return _Process("prometheus", argv, log_path)

    def ready(proc: _Process) -> bool:
        if not _owns_port(proc.pid, ports[-1], "tcp"):
            return False
        status, _ = _http_get(f"http://{LOOPBACK}:{ports[-1]}/-/ready", timeout=2.0)
        return status == 200

    proc = _start_with_retries(make, ready, name="prometheus", timeout=timeout)
    server = PrometheusServer(
        url=f"http://{LOOPBACK}:{ports[-1]}",
        port=ports[-1],
        config_path=config_path,
        data_dir=data_dir,
        log_path=log_path,
        _process=proc,
    )
    try:
        yield server
    finally:
        proc.stop()


def _run_promtool(
    args: Sequence[str], stdin: str | None = None, ok_codes: Sequence[int] = (0,)
) -> tuple[bool, str]:
    binary = _promtool_binary()
    require_backend("promtool", binary is not None, "no promtool binary (apt install prometheus)")
    assert binary is not None
    completed = subprocess.run(
        [binary, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.returncode in ok_codes, (completed.stdout + completed.stderr).strip()


def promtool_check_metrics(text: str, *, lint: bool | None = None) -> tuple[bool, str]:
    """Check exposition text with ``promtool check metrics``; returns (ok, promtool output).

    promtool exits 1 when the text does not parse and 3 when it parses but has lint
    findings (a counter without ``_total``, a metric without HELP, ...). ``lint=True``
    fails on both, ``lint=False`` only on parse errors. The default (None) is strict for
    the classic text format, but parse-only for OpenMetrics (text ending in ``# EOF``):
    promtool reads OpenMetrics with the classic parser and lints it by classic rules, so
    every counter draws "no help text" (HELP names the family, samples end in _total).
    """
    if lint is None:
        lint = text.rstrip().rsplit("\n", 1)[-1].strip() != "# EOF"
    return _run_promtool(["check", "metrics"], stdin=text, ok_codes=(0,) if lint else (0, 3))


def promtool_check_rules(path: Path | str) -> tuple[bool, str]:
    """Validate a rule file with ``promtool check rules``; returns (ok, output)."""
    return _run_promtool(["check", "rules", str(path)])


def promtool_test_rules(path: Path | str) -> tuple[bool, str]:
    """Run rule unit tests with ``promtool test rules``; returns (ok, output)."""
    return _run_promtool(["test", "rules", str(path)])
