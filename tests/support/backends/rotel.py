"""rotel, a real OTLP receiver (gRPC and HTTP) on loopback."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from exporters.otlp.points import recorded
from tests.support.backends.common import (
    DEFAULT_TIMEOUT,
    LOOPBACK,
    _bypass_proxy_for_loopback,
    _owns_port,
    _port_accepts,
    _Process,
    _start_with_retries,
    free_port,
    require_backend,
    restart_process,
    wait_until,
)
from tests.support.backends.rotel_parser import _ANSI, parse_rotel_output


def sent_over_otlp(spec: Any, sample: Any) -> bool:
    """Whether an OTLP export sends this sample of ``Aggregator.collect()``: not a
    counter or histogram cell never recorded in (:func:`exporters.otlp.points.recorded`,
    which reads the columns of ``copy_series``)."""
    value = sample.value
    if spec.kind.value == "histogram":
        return recorded(spec, (*value.bucket_counts, value.sum))
    return recorded(spec, value)


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
        return all(
            _owns_port(proc.pid, port, "tcp") and _port_accepts(port)
            for port in (self.grpc_port, self.http_port)
        )

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
        self._process = restart_process(self._make_process, self._ready, timeout,
                                        "rotel to listen again on its ports")

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
        return self._wait_for(self.spans, predicate, count, timeout, "span(s)")

    def wait_for_metrics(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` metric points match ``predicate``; return the matches."""
        return self._wait_for(self.metrics, predicate, count, timeout, "metric point(s)")

    def _wait_for(self, items: Callable[[], list[dict[str, Any]]],
                  predicate: Callable[[dict[str, Any]], bool] | None, count: int,
                  timeout: float, what: str) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]]:
            if self._process is not None:
                self._process.check_alive()
            return _matching(items(), predicate, count)

        return wait_until(check, timeout, what=f"{count} matching {what} in rotel")


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
