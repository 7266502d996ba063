"""Shared plumbing of the backend helpers: ports, polling, processes, skip-or-fail."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support import ROOT

T = TypeVar("T")

REPO_ROOT = ROOT
DEFAULT_TIMEOUT = 30.0
"""Deadline for starting a backend or waiting for data: ample on a loaded 2-core CI box."""

LOOPBACK = "127.0.0.1"



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


def _owns_port(pid: int | None, port: int, proto: str) -> bool:
    """True if process ``pid`` holds the IPv4 ``proto`` ("tcp"/"udp") socket on ``port``.

    Answering on a port is not proof that *our* server bound it: if another program took
    the port first, our server dies while the other one answers. Linux's /proc tells whose
    socket it is; where /proc is missing this returns True and readiness relies on the
    protocol check alone.
    """
    if pid is None:
        return False
    table = Path(f"/proc/net/{proto}")
    fd_dir = Path(f"/proc/{pid}/fd")
    if not table.exists():
        return True
    inodes: set[str] = set()
    try:
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        return False
    suffix = f":{port:04X}"
    for row in table.read_text().splitlines()[1:]:
        fields = row.split()
        if len(fields) > 9 and fields[1].endswith(suffix) and fields[9] in inodes:
            return True
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


def restart_process(
    make: Callable[[], _Process], ready: Callable[[_Process], bool], timeout: float, what: str,
) -> _Process:
    """Start a backend again on the ports it had; wait until ``ready`` says it answers."""
    proc = make()
    proc.start()

    def answering() -> bool:
        proc.check_alive()
        return ready(proc)

    try:
        wait_until(answering, timeout, what=what)
    except BaseException:
        proc.stop()
        raise
    return proc


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
        if not any(marker in last_log.lower() for marker in ("in use", "eaddrinuse")):
            break
    raise BackendTimeout(f"{name} failed to start:\n{last_log}")
