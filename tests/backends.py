"""Start real monitoring backends on loopback for tests, and read back what they received.

The exporters of yolo-telemetry are only trustworthy if a real consumer accepts their
output, so these helpers run the genuine programs rather than fakes:

* Prometheus (Debian's ``/usr/bin/prometheus``) scraping targets, plus ``promtool`` checks;
* rotel, a Rust OTLP collector shipped on PyPI, whose detailed debug log is parsed back
  into span and metric dictionaries;
* the Etsy StatsD daemon from npm, queried through its TCP management interface.

Every server binds 127.0.0.1 on free ports, lives in a per-test temporary directory and
is torn down (SIGTERM, then SIGKILL) when its context manager exits. Waiting is always
polling against a deadline: machines in CI are slow (2 cores), so deadlines are generous,
but a healthy run returns as soon as the condition holds.

If a backend program is missing the helpers skip the test, unless
``YOLO_TELEMETRY_REQUIRE_BACKENDS=1`` (set by CI) turns that into a failure, so a broken
install can never pass silently.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 30.0
"""Deadline for starting a backend or waiting for data: ample on a loaded 2-core CI box."""

LOOPBACK = "127.0.0.1"

__all__ = [
    "DEFAULT_TIMEOUT",
    "BackendTimeout",
    "PrometheusServer",
    "RotelReceiver",
    "StatsdDaemon",
    "free_port",
    "parse_js_inspect",
    "parse_rotel_output",
    "prometheus_server",
    "promtool_check_metrics",
    "promtool_check_rules",
    "promtool_test_rules",
    "require_backend",
    "rotel_receiver",
    "statsd_daemon",
    "wait_until",
]


# --------------------------------------------------------------------------- generic


def require_backend(name: str, found: bool, why: str) -> None:
    """Skip the calling test when a backend is missing, or fail it when CI demands backends.

    Skipping keeps a developer's quick run usable without every daemon installed; CI sets
    ``YOLO_TELEMETRY_REQUIRE_BACKENDS=1`` so that a missing backend is a red build rather
    than a quietly skipped one.
    """
    if found:
        return
    message = f"{name} backend not available: {why}"
    if os.environ.get("YOLO_TELEMETRY_REQUIRE_BACKENDS", "").strip().lower() in {
        "1",
        "true",
        "yes",
    }:
        pytest.fail(f"{message} (YOLO_TELEMETRY_REQUIRE_BACKENDS=1)", pytrace=False)
    pytest.skip(message)


_handed_out: set[int] = set()


def free_port(kind: str = "tcp") -> int:
    """Return a port on 127.0.0.1 that was free a moment ago (``kind`` is "tcp" or "udp").

    The kernel picks the port (bind to port 0), so parallel test runs do not collide on
    fixed numbers. Ports already handed out by this process are not returned again, so two
    calls in a row never yield the same number for different servers.
    """
    if kind not in ("tcp", "udp"):
        raise ValueError(f"kind must be 'tcp' or 'udp', not {kind!r}")
    sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    for _ in range(50):
        with socket.socket(socket.AF_INET, sock_type) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("could not find a fresh free port on 127.0.0.1")


class BackendTimeout(AssertionError):
    """A backend did not reach the expected state before its deadline.

    It is an AssertionError so pytest reports it as a test failure with our message.
    """


def wait_until(
    condition: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    what: str = "condition",
    interval: float = 0.05,
    max_interval: float = 0.5,
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that value.

    Exceptions raised by ``condition`` count as "not yet" (a server that is still starting
    refuses connections), and the last one is reported if the deadline passes. Polling
    starts fast and backs off, so the common case is quick and a slow machine is not
    hammered.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    last_value: Any = None
    last_error: BaseException | None = None
    while True:
        try:
            last_value = condition()
            last_error = None
            if last_value:
                return last_value
        except Exception as exc:
            last_error = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {last_value!r}"
            raise BackendTimeout(f"timed out after {timeout:.1f}s waiting for {what}; {detail}")
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)


def _port_accepts(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False


# A loopback-only opener: a proxy configured in the environment must never see test traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _http_post(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _bypass_proxy_for_loopback() -> None:
    """Make OTLP clients (requests, grpc) talk to loopback directly even if a proxy is set.

    CI machines may carry HTTP(S) proxy variables for the package registries; without
    this, an SDK exporter pointed at 127.0.0.1 would send its data to the proxy.
    """
    if not any(
        os.environ.get(v)
        for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy")
    ):
        return
    for var in ("no_proxy", "NO_PROXY"):
        current = [p for p in os.environ.get(var, "").split(",") if p]
        for host in (LOOPBACK, "localhost"):
            if host not in current:
                current.append(host)
        os.environ[var] = ",".join(current)


class _Process:
    """One backend process with its output appended to a log file.

    The log is opened in append mode so a restarted process keeps writing after what the
    previous one wrote (rotel's output is the data we parse).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._close_log()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _close_log
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit code."""
        code = None
        if self.popen is not None:
            if self.popen.poll() is None:
                self.popen.terminate()
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(timeout=timeout)
            code = self.popen.returncode
        self._close_log()
        return code

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=DEFAULT_TIMEOUT)
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise with the log tail if the process has exited (so waits fail fast)."""
        if self.popen is not None and self.popen.poll() is not None:
            raise BackendTimeout(
                f"{self.name} exited with code {self.popen.returncode}:\n{self.log_tail()}"
            )


def _start_with_retries(
    process_factory: Callable[[], _Process],
    ready: Callable[[_Process], bool],
    *,
    name: str,
    timeout: float,
    attempts: int = 3,
) -> _Process:
    """Start a process and wait until ``ready``; retry with fresh ports if it dies early.

    A port from :func:`free_port` can be taken by someone else before the server binds
    it; such a server exits at once, and a new attempt picks new ports.
    """
    last_log = ""
    for _ in range(attempts):
        proc = process_factory()
        proc.start()

        def _ready(proc: _Process = proc) -> bool:
            if not proc.running:
                return True  # stop waiting; inspected below
            return ready(proc)

        try:
            wait_until(_ready, timeout, what=f"{name} to become ready")
        except BaseException:
            proc.stop()
            raise
        if proc.running:
            return proc
        proc.stop()
        last_log = proc.log_tail()
        if "in use" not in last_log.lower():
            break
    raise BackendTimeout(f"{name} failed to start:\n{last_log}")


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


# --------------------------------------------------------------------------- rotel

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?\s+(?:TRACE|DEBUG|INFO|WARN|ERROR)\b"
)
_TYPED = re.compile(r"^([A-Za-z]+)\((.*)\)\Z", re.S)
_ITEM_START = re.compile(r"([A-Za-z]+)\(")
_INT = re.compile(r"^[-+]?\d+$")


def _number(text: str) -> int | float:
    text = text.strip()
    return int(text) if _INT.match(text) else float(text)


def _split_slice_items(inner: str) -> list[str]:
    """Split ``Str(a), Int(1), Slice(...)`` into its raw items.

    A string item ends at the first ")" followed by ", Type(" or by the end; other items
    end at their matching parenthesis. Strings containing ``), Int(`` stay ambiguous.
    """
    items: list[str] = []
    pos = 0
    while pos < len(inner):
        match = _ITEM_START.match(inner, pos)
        if not match:
            items.append(inner[pos:])
            break
        kind = match.group(1)
        start = match.end()
        end = -1
        if kind == "Str":
            search = start
            while True:
                close = inner.find(")", search)
                if close < 0:
                    break
                rest = inner[close + 1 :]
                if not rest or re.match(r", [A-Za-z]+\(", rest):
                    end = close
                    break
                search = close + 1
        else:
            depth = 1
            i = start
            while i < len(inner):
                if inner[i] == "(":
                    depth += 1
                elif inner[i] == ")":
                    depth -= 1
                    if depth == 0:
                        end = i
                        break
                i += 1
        if end < 0:
            items.append(inner[pos:])
            break
        items.append(inner[pos : end + 1])
        pos = end + 1
        if inner.startswith(", ", pos):
            pos += 2
    return items


def _parse_any_value(raw: str) -> Any:
    """Turn one printed attribute value into Python.

    ``Str(x)``, ``Int(3)``, ``Double(1.5)``, ``Bool(true)`` and ``Slice(..)`` become str,
    int, float, bool and list; other kinds (Bytes, Map) come back as their printed text.
    """
    match = _TYPED.match(raw)
    if not match:
        return raw
    kind, inner = match.groups()
    try:
        if kind == "Str":
            return inner
        if kind == "Int":
            return int(inner)
        if kind == "Double":
            return float(inner)
        if kind == "Bool":
            return inner == "true"
        if kind in ("Slice", "Array"):
            return [_parse_any_value(item) for item in _split_slice_items(inner)] if inner else []
    except ValueError:
        return raw
    return inner  # Bytes, Map, ...: the printed form


_SPAN_FIELD = re.compile(r"^ {4}(?P<key>[A-Za-z][A-Za-z ]*?)\s*: ?(?P<value>.*)$")
_ARROW = re.compile(r"^(?P<indent> +)-> (?P<key>.+?):(?: (?P<value>.*))?$")
_HEADER = re.compile(
    r"^(?P<what>ResourceSpans|ResourceMetrics|ScopeSpans|ScopeMetrics|Span|SpanEvent|SpanLink|"
    r"Metric|NumberDataPoints|HistogramDataPoints|ExponentialHistogramDataPoints|"
    r"SummaryDataPoints|Exemplar) #\d+$"
)
_POINT_FIELD = re.compile(
    r"^(?P<key>StartTimestamp|Timestamp|Value|Count|Sum|Min|Max|Flags): (?P<value>.*)$"
)
_BOUND = re.compile(r"^ExplicitBounds #\d+: (?P<value>.*)$")
_BUCKET = re.compile(r"^Buckets #\d+, Count: (?P<value>\d+)$")
_EXP_BUCKET = re.compile(
    r"^Bucket [\[(](?P<lo>[^,]+), (?P<hi>[^\])]+)[\])], Count: (?P<count>\d+)$"
)
_QUANTILE = re.compile(r"^QuantileValue #\d+: Quantile (?P<q>[^,]+), Value (?P<v>.*)$")

_POINT_TYPES = {
    "NumberDataPoints": "number",
    "HistogramDataPoints": "histogram",
    "ExponentialHistogramDataPoints": "exponential_histogram",
    "SummaryDataPoints": "summary",
}


def _strip_prefix(value: str, prefix: str) -> str:
    return value[len(prefix) :] if value.startswith(prefix) else value


class _RotelParser:
    """Line-by-line state machine over rotel's ``--debug-log-verbosity detailed`` output.

    rotel prints each received export request in one write, in the layout of the
    OpenTelemetry Collector's debug exporter. Attribute values are printed unescaped, so a
    string containing newlines spans several lines: a value is continued while it lacks its
    closing ")" and, for strings, by any following line that is not part of the layout.
    """

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.points: list[dict[str, Any]] = []
        self.unparsed: list[str] = []
        self.resource: dict[str, Any] = {}
        self.scope = ("", "")
        self.scope_attributes: dict[str, Any] = {}
        self.attr_target: dict[str, Any] | None = None
        self.section = ""  # what the "->" lines currently describe
        self.span: dict[str, Any] | None = None
        self.sub: dict[str, Any] | None = None  # current event / link / exemplar
        self.metric: dict[str, Any] = {}
        self.point: dict[str, Any] | None = None
        self.pending: tuple[dict[str, Any], str, str] | None = None  # target, key, raw text

    # -- attribute values that may span lines
    def _set_pending(self, target: dict[str, Any], key: str, raw: str) -> None:
        target[key] = _parse_any_value(raw)
        # Only typed values ("Str(...", "Int(...") can continue on later lines.
        self.pending = (target, key, raw) if _ITEM_START.match(raw) else None

    def _extend_pending(self, line: str) -> None:
        assert self.pending is not None
        target, key, raw = self.pending
        self._set_pending(target, key, raw + "\n" + line)

    def feed(self, line: str) -> None:
        if self.pending is not None and not self.pending[2].endswith(")"):
            self._extend_pending(line)
            return
        if _LOG_LINE.match(line):
            self.pending = None
            return
        try:
            structural = self._structural(line)
        except ValueError:  # a layout-like line with garbage in it: not layout after all
            structural = False
        if not structural:
            if self.pending is not None and self.pending[2].startswith("Str("):
                self._extend_pending(line)
            elif line.strip():
                self.unparsed.append(line)
            return
        if not _ARROW.match(line) or self.section not in _ATTRIBUTE_SECTIONS:
            self.pending = None

    def _structural(self, line: str) -> bool:
        header = _HEADER.match(line)
        if header:
            self.pending = None
            self._header(header.group("what"))
            return True
        if line.startswith("Resource SchemaURL:") or line.startswith(
            ("ScopeSpans SchemaURL:", "ScopeMetrics SchemaURL:")
        ):
            return True
        if line == "Resource attributes:":
            self._attributes("resource", self.resource)
            return True
        if line == "InstrumentationScope attributes:":
            self._attributes("scope_attributes", self.scope_attributes)
            return True
        if line.startswith("InstrumentationScope "):
            name, _, version = line[len("InstrumentationScope ") :].rpartition(" ")
            self.scope = (name, version)
            self.scope_attributes = {}
            self.section = "scope"
            return True
        if self.span is not None and self.section in _SPAN_SECTIONS and self._span_line(line):
            return True
        if line == "Descriptor:":
            self.section = "descriptor"
            return True
        if line == "Data point attributes:" and self.point is not None:
            self._attributes("point_attributes", self.point["attributes"])
            return True
        if line == "Exemplars:":
            self.section = "exemplars"
            return True
        if self.point is not None and not line.startswith(" ") and self._point_line(line):
            return True
        if line.strip() == "-> Attributes::" and self.sub is not None:
            self._attributes(self.section + "_attributes", self.sub["attributes"])
            return True
        arrow = _ARROW.match(line)
        if arrow:
            return self._arrow(arrow.group("key"), arrow.group("value") or "")
        return False

    def _attributes(self, section: str, target: dict[str, Any]) -> None:
        self.section = section
        self.attr_target = target
        self.pending = None

    def _header(self, what: str) -> None:
        if what in ("ResourceSpans", "ResourceMetrics"):
            self.resource = {}
            self.scope = ("", "")
            self.scope_attributes = {}
            self.span = self.sub = self.point = None
            self.metric = {}
            self.section = "resource_header"
        elif what in ("ScopeSpans", "ScopeMetrics"):
            self.scope = ("", "")
            self.scope_attributes = {}
            self.span = self.sub = self.point = None
            self.section = "scope_header"
        elif what == "Span":
            self.span = {
                "trace_id": "",
                "span_id": "",
                "parent_span_id": None,
                "name": "",
                "kind": "",
                "status_code": "",
                "status_message": "",
                "start_time": None,
                "end_time": None,
                "attributes": {},
                "events": [],
                "links": [],
                "resource": dict(self.resource),
                "scope": self.scope[0],
                "scope_version": self.scope[1],
            }
            self.spans.append(self.span)
            self.sub = None
            self.section = "span"
        elif what == "SpanEvent" and self.span is not None:
            self.sub = {"name": "", "time": None, "attributes": {}, "dropped_attributes_count": 0}
            self.span["events"].append(self.sub)
            self.section = "event"
        elif what == "SpanLink" and self.span is not None:
            self.sub = {
                "trace_id": "",
                "span_id": "",
                "trace_state": "",
                "attributes": {},
                "dropped_attributes_count": 0,
            }
            self.span["links"].append(self.sub)
            self.section = "link"
        elif what == "Metric":
            self.metric = {
                "name": "",
                "description": "",
                "unit": "",
                "type": "",
                "monotonic": None,
                "temporality": None,
            }
            self.point = None
            self.section = "metric"
        elif what in _POINT_TYPES:
            kind = _POINT_TYPES[what]
            point: dict[str, Any] = {
                **self.metric,
                "point_kind": kind,
                "attributes": {},
                "start_time": None,
                "time": None,
                "exemplars": [],
                "resource": dict(self.resource),
                "scope": self.scope[0],
                "scope_version": self.scope[1],
            }
            if kind == "number":
                point["value"] = None
            else:
                point.update(count=None, sum=None, min=None, max=None)
            if kind == "histogram":
                point.update(bounds=[], bucket_counts=[])
            elif kind == "exponential_histogram":
                point["buckets"] = []
            elif kind == "summary":
                point["quantiles"] = []
            self.point = point
            self.points.append(point)
            self.sub = None
            self.section = "point"
        elif what == "Exemplar" and self.point is not None:
            self.sub = {
                "trace_id": "",
                "span_id": "",
                "time": None,
                "value": None,
                "attributes": {},
            }
            self.point["exemplars"].append(self.sub)
            self.section = "exemplar"

    def _span_line(self, line: str) -> bool:
        assert self.span is not None
        if line.startswith("Start time: "):
            self.span["start_time"] = int(line.split(": ", 1)[1])
            return True
        if line.startswith("End time: "):
            self.span["end_time"] = int(line.split(": ", 1)[1])
            return True
        if line == "Attributes:":
            self._attributes("span_attributes", self.span["attributes"])
            return True
        if line == "Events:":
            self.section = "events"
            return True
        if line == "Links:":
            self.section = "links"
            return True
        if self.section == "span" and not line.lstrip().startswith("->"):
            field_match = _SPAN_FIELD.match(line)
            if field_match:
                key, value = field_match.group("key"), field_match.group("value")
                if key == "Trace ID":
                    self.span["trace_id"] = value
                elif key == "Parent ID":
                    self.span["parent_span_id"] = value or None
                elif key == "ID":
                    self.span["span_id"] = value
                elif key == "Name":
                    self.span["name"] = value
                elif key == "Kind":
                    self.span["kind"] = _strip_prefix(value, "SPAN_KIND_")
                elif key == "Status code":
                    self.span["status_code"] = _strip_prefix(value, "STATUS_CODE_")
                elif key == "Status message":
                    self.span["status_message"] = value
                else:
                    self.span[key.lower().replace(" ", "_")] = value
                return True
        return False

    def _point_line(self, line: str) -> bool:
        assert self.point is not None
        point = self.point
        match = _POINT_FIELD.match(line)
        if match:
            key, value = match.group("key"), match.group("value")
            if key == "StartTimestamp":
                point["start_time"] = int(value)
            elif key == "Timestamp":
                point["time"] = int(value)
            elif key == "Flags":
                point["flags"] = value
            else:
                point[key.lower()] = _number(value)
            self.section = "point"
            return True
        match = _BOUND.match(line)
        if match:
            point.setdefault("bounds", []).append(float(match.group("value")))
            return True
        match = _BUCKET.match(line)
        if match:
            point.setdefault("bucket_counts", []).append(int(match.group("value")))
            return True
        match = _EXP_BUCKET.match(line)
        if match:
            point.setdefault("buckets", []).append(
                (float(match.group("lo")), float(match.group("hi")), int(match.group("count")))
            )
            return True
        match = _QUANTILE.match(line)
        if match:
            point.setdefault("quantiles", []).append(
                (float(match.group("q")), _number(match.group("v")))
            )
            return True
        return False

    def _arrow(self, key: str, value: str) -> bool:
        section = self.section
        if section in _ATTRIBUTE_SECTIONS and self.attr_target is not None:
            self._set_pending(self.attr_target, key, value)
            return True
        if section == "metric" or section == "descriptor":
            metric = self.metric
            if key == "Name":
                metric["name"] = value
            elif key == "Description":
                metric["description"] = value
            elif key == "Unit":
                metric["unit"] = value
            elif key == "DataType":
                metric["type"] = value
            elif key == "IsMonotonic":
                metric["monotonic"] = value == "true"
            elif key == "AggregationTemporality":
                metric["temporality"] = _strip_prefix(value, "AGGREGATION_TEMPORALITY_")
            else:
                metric[key.lower()] = value
            return True
        if self.sub is not None and section in ("event", "link", "exemplar"):
            sub = self.sub
            if key == "Name":
                sub["name"] = value
            elif key == "Timestamp":
                sub["time"] = int(value) if value else None
            elif key == "DroppedAttributesCount":
                sub["dropped_attributes_count"] = int(value or 0)
            elif key == "Trace ID":
                sub["trace_id"] = value
            elif key in ("ID", "Span ID"):
                sub["span_id"] = value
            elif key == "TraceState":
                sub["trace_state"] = value
            elif key == "Value":
                sub["value"] = _number(value)
            else:
                sub[key.lower().replace(" ", "_")] = value
            return True
        return False


_SPAN_SECTIONS = {
    "span",
    "span_attributes",
    "events",
    "links",
    "event",
    "event_attributes",
    "link",
    "link_attributes",
}

_ATTRIBUTE_SECTIONS = {
    "resource",
    "scope_attributes",
    "span_attributes",
    "event_attributes",
    "link_attributes",
    "exemplar_attributes",
    "point_attributes",
}


def parse_rotel_output(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse rotel's detailed debug log into ``(spans, metric_points)``, in arrival order.

    A span is a dict with ``trace_id``, ``span_id``, ``parent_span_id`` (None for a
    root), ``name``, ``kind`` ("INTERNAL", "SERVER", ...), ``status_code`` ("UNSET",
    "OK", "ERROR"), ``status_message``, ``start_time``/``end_time`` (Unix ns),
    ``attributes``, ``events`` (each ``name``, ``time``, ``attributes``), ``links``,
    ``resource`` (resource attributes), ``scope`` and ``scope_version``.

    A metric point is a dict with the metric's ``name``, ``description``, ``unit``,
    ``type`` ("Sum", "Gauge", "Histogram", "ExponentialHistogram", "Summary"),
    ``monotonic`` and ``temporality`` ("CUMULATIVE"/"DELTA"/None), plus the point's
    ``attributes``, ``start_time``, ``time``, ``exemplars``, ``resource``, ``scope``, and
    ``value`` (sums and gauges) or ``count``/``sum``/``min``/``max`` with ``bounds`` and
    ``bucket_counts`` (histograms; one more count than bounds) or ``buckets`` as
    ``(lower, upper, count)`` triples (exponential histograms).
    """
    parser = _RotelParser()
    lines = _ANSI.sub("", text).split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last block
    for line in lines:
        parser.feed(line)
    return parser.spans, parser.points


def _rotel_binary() -> Path | None:
    spec = importlib.util.find_spec("rotel")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "rotel-agent"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _matching(
    items: list[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool] | None, count: int
) -> list[dict[str, Any]]:
    selected = [item for item in items if predicate is None or predicate(item)]
    return selected if len(selected) >= count else []


def _subset(wanted: Mapping[str, Any] | None, actual: Mapping[str, Any]) -> bool:
    return not wanted or all(actual.get(k) == v for k, v in wanted.items())


class RotelReceiver:
    """A rotel OTLP receiver (gRPC and HTTP) that logs everything it receives.

    Data is read back by parsing its output file, from the last :meth:`clear` on.
    """

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.log_path = workdir / "rotel.log"
        self.grpc_port = 0
        self.http_port = 0
        self._offset = 0
        self._process: _Process | None = None

    # endpoints -----------------------------------------------------------
    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, as OTLP gRPC exporters expect (use insecure=True)."""
        return f"http://{LOOPBACK}:{self.grpc_port}"

    @property
    def grpc_address(self) -> str:
        """``127.0.0.1:PORT`` without scheme."""
        return f"{LOOPBACK}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: OTLP/HTTP base; signals go to /v1/traces, /v1/metrics."""
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def traces_url(self) -> str:
        return f"{self.http_endpoint}/v1/traces"

    @property
    def metrics_url(self) -> str:
        return f"{self.http_endpoint}/v1/metrics"

    # process control -----------------------------------------------------
    def _make_process(self) -> _Process:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTEL_")}
        env["NO_COLOR"] = "1"
        argv = [
            str(self.binary),
            "start",
            "--exporter", "blackhole",
            "--debug-log", "traces",
            "--debug-log", "metrics",
            "--debug-log-verbosity", "detailed",
            "--otlp-grpc-endpoint", self.grpc_address,
            "--otlp-http-endpoint", f"{LOOPBACK}:{self.http_port}",
            "--pid-file", str(self.workdir / "rotel.pid"),
            "--log-file", str(self.workdir / "rotel-daemon.log"),
        ]  # fmt: skip
        return _Process("rotel", argv, self.log_path, env=env, cwd=self.workdir)

    def _ready(self, proc: _Process) -> bool:
        return _port_accepts(self.grpc_port) and _port_accepts(self.http_port)

    def start(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Start on fresh free ports (first start) or on the same ports (restarts)."""
        if self._process is not None and self._process.running:
            raise RuntimeError("rotel is already running")
        if self.grpc_port == 0:

            def make() -> _Process:
                self.grpc_port = free_port()
                self.http_port = free_port()
                return self._make_process()

            self._process = _start_with_retries(make, self._ready, name="rotel", timeout=timeout)
            return
        proc = self._make_process()
        proc.start()
        self._process = proc

        def ready() -> bool:
            proc.check_alive()
            return self._ready(proc)

        try:
            wait_until(ready, timeout, what="rotel to listen again on its ports")
        except BaseException:
            proc.stop()
            raise

    def kill(self, *, graceful: bool = False) -> None:
        """Stop the receiver: SIGKILL like a crash, or SIGTERM when ``graceful``."""
        if self._process is None:
            return
        if graceful:
            self._process.stop()
        else:
            self._process.kill()

    def stop(self) -> None:
        """Terminate (then kill if needed); used at teardown."""
        if self._process is not None:
            self._process.stop()

    def restart(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Start again on the same ports after :meth:`kill` (or kill first if running)."""
        if self._process is not None and self._process.running:
            self._process.kill()
        self.start(timeout)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    # reading data ---------------------------------------------------------
    def output(self) -> str:
        """Raw output since the last :meth:`clear` (ANSI colours removed).

        rotel writes each received request as one block ending in a newline; anything
        after the last newline is a block still being written and is left for next time,
        so a poll never sees half a span.
        """
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return ""
        data = data[: data.rfind(b"\n") + 1]
        return _ANSI.sub("", data.decode("utf-8", "replace"))

    def clear(self) -> None:
        """Forget everything received so far; later reads see only newer data."""
        try:
            self._offset = self.log_path.stat().st_size
        except FileNotFoundError:
            self._offset = 0

    def spans(self, name: str | None = None) -> list[dict[str, Any]]:
        """Spans received so far (see :func:`parse_rotel_output`), optionally by name."""
        spans, _ = parse_rotel_output(self.output())
        return [s for s in spans if name is None or s["name"] == name]

    def metrics(self, name: str | None = None) -> list[dict[str, Any]]:
        """Metric data points received so far, in arrival order, optionally by name.

        Cumulative exporters resend every point on each export, so a name usually appears
        many times; :meth:`last_point` picks the newest.
        """
        _, points = parse_rotel_output(self.output())
        return [p for p in points if name is None or p["name"] == name]

    def last_point(
        self, name: str, attributes: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Newest point of metric ``name`` whose attributes include ``attributes``."""
        for point in reversed(self.metrics(name)):
            if _subset(attributes, point["attributes"]):
                return point
        return None

    def wait_for_spans(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` spans match ``predicate`` (any span if None); return them."""

        def check() -> list[dict[str, Any]]:
            if self._process is not None:
                self._process.check_alive()
            return _matching(self.spans(), predicate, count)

        return wait_until(check, timeout, what=f"{count} matching span(s) in rotel")

    def wait_for_metrics(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` metric points match ``predicate``; return the matches."""

        def check() -> list[dict[str, Any]]:
            if self._process is not None:
                self._process.check_alive()
            return _matching(self.metrics(), predicate, count)

        return wait_until(check, timeout, what=f"{count} matching metric point(s) in rotel")


@contextlib.contextmanager
def rotel_receiver(tmp_path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> Iterator[RotelReceiver]:
    """Run rotel as an OTLP receiver on 127.0.0.1 (gRPC and HTTP) that logs what it gets.

    rotel exports to a blackhole; its detailed debug log of traces and metrics is the
    record that :meth:`RotelReceiver.spans` and :meth:`RotelReceiver.metrics` parse.
    """
    binary = _rotel_binary()
    require_backend("rotel", binary is not None, "the rotel package (pip install rotel) is missing")
    assert binary is not None
    _bypass_proxy_for_loopback()
    receiver = RotelReceiver(binary, Path(tempfile.mkdtemp(prefix="rotel-", dir=tmp_path)))
    receiver.start(timeout)
    try:
        yield receiver
    finally:
        receiver.stop()


# --------------------------------------------------------------------------- StatsD

STATSD_FLUSH_INTERVAL_MS = 24 * 3600 * 1000
"""One day: the daemon must not flush (and reset) during a test. Node caps timers at
2**31-1 ms and turns larger values into 1 ms, so "very long" must stay below that."""

# Make util.inspect print whole arrays on one line, so admin output is complete.
_STATSD_PRELOAD = """\
const util = require('util');
Object.assign(util.inspect.defaultOptions, {
  maxArrayLength: null, maxStringLength: null, breakLength: Infinity, depth: null,
});
"""

# A StatsD backend that records what the daemon hands to real backends at each flush
# (including timer_counters and sets, which the admin interface cannot show) and every
# raw datagram received.
_STATSD_PROBE = """\
const fs = require('fs');
exports.init = function (startupTime, config, events) {
  const probe = config.yoloProbe || {};
  let packets = 0;
  events.on('packet', function (msg, rinfo) {
    packets += 1;
    fs.appendFileSync(probe.packetFile,
      JSON.stringify({data: msg.toString('utf8'), port: rinfo && rinfo.port}) + '\\n');
  });
  events.on('flush', function (timestamp, metrics) {
    const sets = {};
    for (const key in metrics.sets) { sets[key] = metrics.sets[key].values(); }
    fs.appendFileSync(probe.flushFile, JSON.stringify({
      timestamp: timestamp,
      counters: metrics.counters,
      gauges: metrics.gauges,
      timers: metrics.timers,
      timer_counters: metrics.timer_counters,
      timer_data: metrics.timer_data,
      counter_rates: metrics.counter_rates,
      sets: sets,
      pctThreshold: metrics.pctThreshold,
    }) + '\\n');
  });
  events.on('status', function (write) {
    write(null, 'yoloprobe', 'packets_seen', packets);
  });
  return true;
};
"""

_JS_TOKEN = re.compile(
    r"""\s*(?:
      (?P<more>\.\.\.\ (?P<more_n>\d+)\ more\ items?)
    | (?P<tag>\[(?:Object|Array|Circular[^\]]*|Function[^\]]*|Getter[^\]]*)\])
    | (?P<punct>[{}\[\],:])
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`)
    | (?P<num>-?(?:Infinity|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)n?)
    | (?P<ident>[A-Za-z_$][\w$]*)
    )""",
    re.X,
)
_JS_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.S)
_JS_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _js_unescape(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc.startswith("u{"):
            return chr(int(esc[2:-1], 16))
        if esc.startswith(("u", "x")) and len(esc) > 1:
            return chr(int(esc[1:], 16))
        return _JS_SIMPLE_ESCAPES.get(esc, esc)

    return _JS_ESCAPE.sub(replace, body)


def _js_number(text: str) -> int | float:
    text = text.rstrip("n")
    if text in ("NaN", "-NaN"):
        return float("nan")
    if text.endswith("Infinity"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == "-0":
        return -0.0
    return int(text) if _INT.match(text) else float(text)


def parse_js_inspect(text: str) -> Any:
    """Parse Node's ``util.inspect`` rendering of plain data (objects, arrays, numbers, ...).

    The StatsD admin commands print their tables this way. Keys may be bare or quoted,
    output may be wrapped over lines, and numbers include NaN/Infinity. Output that
    Node truncated ("... 5 more items", "[Object]") raises ValueError, because silently
    dropping timer samples would make assertions lie.
    """
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _JS_TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot parse util.inspect output at {text[pos : pos + 40]!r}")
        pos = match.end()
        kind = "more" if match.group("more") else match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))

    index = 0

    def peek() -> tuple[str, str]:
        return tokens[index] if index < len(tokens) else ("eof", "")

    def take(expected: str | None = None) -> tuple[str, str]:
        nonlocal index
        token = peek()
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, found {token[1]!r} in util.inspect output")
        index += 1
        return token

    def value() -> Any:
        kind, raw = take()
        if kind == "punct" and raw == "{":
            result: dict[str, Any] = {}
            while peek()[1] != "}":
                key_kind, key_raw = take()
                if key_kind == "str":
                    key = _js_unescape(key_raw[1:-1])
                elif key_kind in ("ident", "num"):
                    key = key_raw
                elif key_kind == "more":
                    raise ValueError(f"util.inspect output was truncated: {key_raw}")
                else:
                    raise ValueError(f"unexpected key {key_raw!r} in util.inspect output")
                take(":")
                result[key] = value()
                if peek()[1] == ",":
                    take(",")
            take("}")
            return result
        if kind == "punct" and raw == "[":
            items: list[Any] = []
            while peek()[1] != "]":
                if peek()[0] == "more":
                    raise ValueError(f"util.inspect output was truncated: {peek()[1]}")
                items.append(value())
                if peek()[1] == ",":
                    take(",")
            take("]")
            return items
        if kind == "str":
            return _js_unescape(raw[1:-1])
        if kind == "num":
            return _js_number(raw)
        if kind == "ident":
            return {"true": True, "false": False, "null": None, "undefined": None}.get(raw, raw)
        if kind in ("tag", "more"):
            raise ValueError(f"util.inspect output was truncated: {raw}")
        raise ValueError(f"unexpected {raw!r} in util.inspect output")

    result = value()
    if index != len(tokens):
        raise ValueError(f"trailing data in util.inspect output: {tokens[index:]}")
    return result


_STATSD_INTERNAL = ("bad_lines_seen", "packets_received", "metrics_received")
_STATSD_END_COMMANDS = frozenset(
    {"stats", "counters", "timers", "gauges", "delcounters", "deltimers", "delgauges"}
)
_STATSD_SENTINEL = re.compile(rb"health: (?:up|down)\n$")


def _statsd_dir() -> tuple[Path | None, str]:
    candidates: list[Path] = []
    env_dir = os.environ.get("YOLO_TELEMETRY_STATSD_DIR")
    if env_dir:
        candidates.append(Path(env_dir))
    candidates += [REPO_ROOT / ".cache" / "statsd", Path("/tmp/npmstatsd")]
    for candidate in candidates:
        if (candidate / "node_modules" / "statsd" / "stats.js").is_file():
            return candidate, ""
    tried = ", ".join(str(c) for c in candidates)
    return None, f"no node_modules/statsd/stats.js under {tried} (npm install statsd)"


class StatsdDaemon:
    """The Etsy StatsD daemon on 127.0.0.1, inspected through its TCP admin interface."""

    def __init__(
        self,
        node: str,
        statsd_dir: Path,
        workdir: Path,
        *,
        percent_threshold: Sequence[float],
        extra_config: Mapping[str, Any] | None,
    ) -> None:
        self.node = node
        self.statsd_dir = statsd_dir
        self.workdir = workdir
        self.host = LOOPBACK
        self.port = 0
        self.admin_port = 0
        self.percent_threshold = list(percent_threshold)
        self.extra_config = dict(extra_config or {})
        self.log_path = workdir / "statsd.log"
        self.config_path = workdir / "config.js"
        self.packet_file = workdir / "packets.jsonl"
        self.flush_file = workdir / "flushes.jsonl"
        self.preload_path = workdir / "inspect-preload.js"
        self.probe_path = workdir / "probe-backend.js"
        self.preload_path.write_text(_STATSD_PRELOAD)
        self.probe_path.write_text(_STATSD_PROBE)
        self._process: _Process | None = None

    # process control -------------------------------------------------------
    def _write_config(self) -> None:
        config = {
            "address": LOOPBACK,
            "port": self.port,
            "mgmt_address": LOOPBACK,
            "mgmt_port": self.admin_port,
            "flushInterval": STATSD_FLUSH_INTERVAL_MS,
            "deleteIdleStats": True,
            "percentThreshold": self.percent_threshold,
            "backends": [str(self.probe_path)],
            "automaticConfigReload": False,
            "dumpMessages": False,
            "debug": False,
            "yoloProbe": {"packetFile": str(self.packet_file), "flushFile": str(self.flush_file)},
            **self.extra_config,
        }
        # StatsD evaluates its config file as JavaScript; JSON is a valid object literal.
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def _make_process(self) -> _Process:
        argv = [
            self.node,
            "--require", str(self.preload_path),
            str(self.statsd_dir / "node_modules" / "statsd" / "stats.js"),
            str(self.config_path),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "NODE_OPTIONS"}
        return _Process("statsd", argv, self.log_path, env=env, cwd=self.workdir)

    def _healthy(self, proc: _Process) -> bool:
        return self.admin("health").strip() == "health: up"

    def start(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Start the daemon: on fresh ports the first time, on the same ports afterwards.

        A restarted daemon begins with empty tables, like a real StatsD restart.
        """
        if self._process is not None and self._process.running:
            raise RuntimeError("statsd is already running")
        if self.port == 0:

            def make() -> _Process:
                self.port = free_port("udp")
                self.admin_port = free_port("tcp")
                self._write_config()
                return self._make_process()

            self._process = _start_with_retries(make, self._healthy, name="statsd", timeout=timeout)
            return
        proc = self._make_process()
        proc.start()
        self._process = proc

        def ready() -> bool:
            proc.check_alive()
            return self._healthy(proc)

        try:
            wait_until(ready, timeout, what="statsd to answer on its admin port again")
        except BaseException:
            proc.stop()
            raise

    def stop(self) -> None:
        """SIGTERM the daemon, which makes it flush once (recorded for :meth:`last_flush`)."""
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        """SIGKILL the daemon, as a crash would (no final flush)."""
        if self._process is not None:
            self._process.kill()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    # admin interface ---------------------------------------------------------
    def admin(self, command: str, timeout: float = 10.0) -> str:
        """Send one management command and return its reply (without the END marker).

        The daemon treats each TCP read as one command line, so every command gets its
        own connection and is sent alone. Table commands end their reply with "END";
        ``health`` answers one line. The rest (``help``, ``config``, unknown commands)
        have no terminator, so a ``health`` command is sent after the first reply bytes:
        the daemon answers in order, and its ``health:`` line marks the end.
        """
        name = command.split()[0] if command.split() else ""
        table = name in _STATSD_END_COMMANDS
        sentinel_sent = False
        data = b""
        deadline = time.monotonic() + timeout
        with socket.create_connection((LOOPBACK, self.admin_port), timeout=timeout) as sock:
            sock.sendall(command.encode("ascii") + b"\n")
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(65536)
                except TimeoutError as exc:
                    raise BackendTimeout(f"statsd admin {command!r} did not finish") from exc
                if not chunk:
                    break
                data += chunk
                if table:
                    if data.endswith((b"END\n\n", b"ERROR\n")):
                        break
                elif name in ("health", "quit"):
                    if data.endswith(b"\n"):
                        break
                elif not sentinel_sent:
                    sock.sendall(b"health\n")
                    sentinel_sent = True
                else:
                    match = _STATSD_SENTINEL.search(data)
                    if match:
                        data = data[: match.start()]
                        break
        text = data.decode("utf-8", "replace")
        if text.endswith("END\n\n"):
            text = text[: -len("END\n\n")]
        return text.strip("\n")

    def _table(self, command: str) -> dict[str, Any]:
        text = self.admin(command)
        if text == "ERROR":
            raise RuntimeError(f"statsd rejected admin command {command!r}")
        parsed = parse_js_inspect(text)
        if not isinstance(parsed, dict):
            raise ValueError(f"statsd {command} did not print an object: {text!r}")
        return parsed

    def counters(self, *, include_internal: bool = False) -> dict[str, float]:
        """Counters since start (sample rates already applied by the daemon: 1|c|@0.5 is 2).

        The daemon's own ``statsd.*`` packet counters are left out unless asked for; see
        :meth:`stats`.
        """
        table = self._table("counters")
        if include_internal:
            return table
        internal = {f"statsd.{name}" for name in _STATSD_INTERNAL}
        return {k: v for k, v in table.items() if k not in internal}

    def gauges(self) -> dict[str, float]:
        """Current gauge values."""
        return self._table("gauges")

    def timers(self) -> dict[str, list[float]]:
        """Raw timer samples per name, in arrival order, as the daemon holds them.

        Sample rates are not applied here: ``t:5|ms|@0.1`` is one sample of 5. The
        daemon's sampled count is only exposed at a flush; see :meth:`timer_counts`.
        """
        return self._table("timers")

    def stats(self) -> dict[str, Any]:
        """The ``stats`` admin report plus the daemon's packet counters.

        Keys: ``uptime``, ``messages.last_msg_seen`` (seconds ago),
        ``messages.bad_lines_seen``, ``packets_received`` (datagrams),
        ``metrics_received`` (lines), ``bad_lines_seen`` and the probe's
        ``yoloprobe.packets_seen``.
        """
        result: dict[str, Any] = {}
        for line in self.admin("stats").splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                try:
                    result[key.strip()] = _js_number(value.strip())
                except ValueError:
                    result[key.strip()] = value.strip()
        table = self._table("counters")
        for name in _STATSD_INTERNAL:
            result[name] = table.get(f"statsd.{name}", 0)
        return result

    def delete(self, kind: str, *names: str) -> str:
        """Delete counters/timers/gauges by name (``"prefix.*"`` for a folder)."""
        if kind not in ("counters", "timers", "gauges"):
            raise ValueError("kind must be counters, timers or gauges")
        return self.admin(" ".join([f"del{kind}", *names]))

    def wait_for(
        self, predicate: Callable[[StatsdDaemon], T], timeout: float = DEFAULT_TIMEOUT
    ) -> T:
        """Wait until ``predicate(self)`` is truthy (e.g. a counter reached a value)."""

        def check() -> T:
            if self._process is not None:
                self._process.check_alive()
            return predicate(self)

        return wait_until(check, timeout, what="statsd condition")

    def wait_for_metrics_received(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait until the daemon has parsed at least ``count`` metric lines.

        UDP is fire-and-forget, so this is how a test knows its lines have arrived.
        """

        def received(daemon: StatsdDaemon) -> int:
            seen = int(daemon.stats()["metrics_received"])
            return seen if seen >= count else 0

        return self.wait_for(received, timeout)

    # probe data ---------------------------------------------------------------
    def packets(self) -> list[str]:
        """Every UDP datagram received since the first start, as text, in order."""
        try:
            lines = self.packet_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line)["data"] for line in lines if line]

    def lines(self) -> list[str]:
        """The metric lines of all received datagrams (datagrams split on newlines)."""
        return [line for packet in self.packets() for line in packet.split("\n") if line]

    def flushes(self) -> list[dict[str, Any]]:
        """What the daemon handed its backends at each flush (one per :meth:`stop`)."""
        try:
            lines = self.flush_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line]

    def last_flush(self) -> dict[str, Any]:
        """The most recent flush: counters, gauges, timers, timer_counters, timer_data, sets."""
        flushes = self.flushes()
        if not flushes:
            raise RuntimeError(
                "statsd has not flushed yet: call stop() first (it flushes on SIGTERM)"
            )
        return flushes[-1]

    def timer_counts(self) -> dict[str, float]:
        """Sample-rate-corrected timer counts (``timer_counters``) from the last flush.

        The admin interface has no command for them, so they are only known once the
        daemon flushes, which it does on SIGTERM: call :meth:`stop` first.
        """
        if self.running and not self.flushes():
            raise RuntimeError("timer counts are known only after stop() (the final flush)")
        return dict(self.last_flush()["timer_counters"])

    def sets(self) -> dict[str, list[str]]:
        """Set members from the last flush (the admin interface cannot print sets)."""
        return dict(self.last_flush()["sets"])

    def log(self) -> str:
        """The daemon's own log output, for diagnosing a failed test."""
        return self._process.log_text() if self._process is not None else ""


@contextlib.contextmanager
def statsd_daemon(
    tmp_path: Path,
    *,
    percent_threshold: Sequence[float] = (90,),
    extra_config: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[StatsdDaemon]:
    """Run the npm ``statsd`` daemon with UDP and admin ports on 127.0.0.1.

    It is found in ``$YOLO_TELEMETRY_STATSD_DIR``, ``.cache/statsd`` or ``/tmp/npmstatsd``
    (each a folder with ``node_modules/statsd``). The flush interval is a day, so values
    accumulate for the whole test and the admin tables show everything; its only backend
    is a probe that records raw datagrams and the final flush.
    """
    statsd_dir, why = _statsd_dir()
    node = shutil.which("node") or shutil.which("nodejs")
    require_backend("statsd", statsd_dir is not None, why)
    require_backend("statsd", node is not None, "no node binary on PATH (apt install nodejs)")
    assert statsd_dir is not None and node is not None
    daemon = StatsdDaemon(
        node,
        statsd_dir,
        Path(tempfile.mkdtemp(prefix="statsd-", dir=tmp_path)),
        percent_threshold=percent_threshold,
        extra_config=extra_config,
    )
    daemon.start(timeout)
    try:
        yield daemon
    finally:
        daemon.stop()
