"""Where the push exporters send during a benchmark.

StatsD goes to a loopback UDP socket that is bound but never read: the kernel
queues datagrams and then drops them, as a busy daemon would, so the exporter runs
its healthy path (a closed port would answer with refusals and put it on its
failure path: backlog and retries, the dead-backend case the fault tests cover).
OTLP goes to a real receiver when the rotel
agent is installed (a separate process that accepts and discards, so spans and
metrics are really encoded and posted), else to a closed loopback TCP port.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import closed_port


@dataclass(frozen=True)
class Receivers:
    otlp_endpoint: str
    otlp_kind: str  # "rotel (discarding)" or "closed port"
    statsd_port: int
    statsd_kind: str = "unread socket"

    def describe(self) -> dict[str, str]:
        return {"otlp": f"{self.otlp_kind} {self.otlp_endpoint}",
                "statsd": f"{self.statsd_kind} 127.0.0.1:{self.statsd_port}"}


def rotel_binary() -> Path | None:
    try:
        import rotel
    except ImportError:
        return None
    path = Path(rotel.__file__).parent / "rotel-agent"
    return path if path.exists() else None


def _wait_listening(port: int, deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)  # polling a port with a deadline, not synchronising threads
    return False


@contextlib.contextmanager
def receivers(mode: str = "auto") -> Iterator[Receivers]:
    """``mode``: "auto" (rotel when installed), "real" (rotel or fail), "closed"."""
    with _unread_udp_socket() as statsd_port:
        yield from _otlp_receiver(mode, statsd_port)


@contextlib.contextmanager
def _unread_udp_socket() -> Iterator[int]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sink.bind(("127.0.0.1", 0))
        yield sink.getsockname()[1]
    finally:
        sink.close()


def _otlp_receiver(mode: str, statsd_port: int) -> Iterator[Receivers]:
    binary = rotel_binary() if mode in ("auto", "real") else None
    if binary is None:
        if mode == "real":
            raise RuntimeError("the rotel agent is not installed (pip install rotel)")
        yield Receivers(f"http://127.0.0.1:{closed_port(socket.SOCK_STREAM)}", "closed port",
                        statsd_port)
        return
    http_port, grpc_port = closed_port(socket.SOCK_STREAM), closed_port(socket.SOCK_STREAM)
    with tempfile.TemporaryDirectory(prefix="yolo-bench-rotel-") as tmp:
        log = open(Path(tmp) / "rotel.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [str(binary), "start", "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
             "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}", "--exporter", "blackhole",
             "--pid-file", str(Path(tmp) / "rotel.pid")],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            if not _wait_listening(http_port, 10.0):
                raise RuntimeError("the rotel agent did not start listening within 10 s")
            yield Receivers(f"http://127.0.0.1:{http_port}", "rotel (discarding)", statsd_port)
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            log.close()
