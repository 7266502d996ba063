"""The real Etsy StatsD daemon (npm package ``statsd``) for integration tests.

Started on loopback ports with a long ``flushInterval`` so nothing is reset while a
test runs; read through its management port (``counters``, ``gauges``, ``timers``).
The management interface shows the sampled timer *values* but not the timer
*counts* the daemon derives from sample rates, so the daemon also loads a tiny
backend (``dump_backend.js``, the daemon's documented plugin interface) that
writes what it flushes as JSON; stopping the daemon with SIGTERM makes it flush
once more, which gives the counts.

Where the daemon is: ``YOLO_TELEMETRY_STATSD_DIR`` (the package folder holding
``stats.js``), else ``/tmp/npmstatsd/node_modules/statsd`` or
``.cache/npm/node_modules/statsd`` in the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
CANDIDATES = (
    os.environ.get("YOLO_TELEMETRY_STATSD_DIR", ""),
    "/tmp/npmstatsd/node_modules/statsd",
    str(REPOSITORY / ".cache" / "npm" / "node_modules" / "statsd"),
)

DUMP_BACKEND = """
const fs = require('fs');
exports.init = function (startupTime, config, events) {
  events.on('flush', function (ts, metrics) {
    fs.appendFileSync(config.dumpFile, JSON.stringify({
      counters: metrics.counters, gauges: metrics.gauges,
      timer_counters: metrics.timer_counters}) + "\\n");
  });
  return true;
};
"""

_ENTRY = re.compile(r"""(?:'((?:[^'\\]|\\.)*)'|([A-Za-z_$][\w$]*)):\s*"""
                    r"""(-?(?:\d+\.?\d*(?:e[+-]?\d+)?|Infinity)|NaN)""")
_ARRAY = re.compile(r"""(?:'((?:[^'\\]|\\.)*)'|([A-Za-z_$][\w$]*)):\s*\[([^\]]*)\]""")


def require_backend(reason: str) -> None:
    """Skip, or fail when YOLO_TELEMETRY_REQUIRE_BACKENDS=1 (CI must run these)."""
    if os.environ.get("YOLO_TELEMETRY_REQUIRE_BACKENDS") == "1":
        pytest.fail(f"backend required but unavailable: {reason}")
    pytest.skip(reason)


def daemon_dir() -> Path | None:
    for candidate in CANDIDATES:
        if candidate and (Path(candidate) / "stats.js").is_file():
            return Path(candidate)
    return None


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_inspect(text: str) -> dict[str, float]:
    """Numbers out of node's ``util.inspect`` of a flat object."""
    return {quoted or bare: float(value) for quoted, bare, value in _ENTRY.findall(text)}


class EtsyStatsd:
    """One daemon process; :meth:`stop` returns its final flush."""

    def __init__(self, tmp_path: Path, port: int | None = None, tcp: bool = False) -> None:
        package = daemon_dir()
        node = shutil.which("node") or shutil.which("nodejs")
        if package is None or node is None:
            require_backend("the Etsy statsd daemon (npm install statsd) or node is missing")
        assert package is not None and node is not None
        self.port = port or free_port(socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        self.mgmt_port = free_port()
        self.dump = tmp_path / "statsd-flush.jsonl"
        backend = tmp_path / "dump_backend.js"
        backend.write_text(DUMP_BACKEND)
        server = {"server": "./servers/tcp" if tcp else "./servers/udp",
                  "address": "127.0.0.1", "port": self.port}
        config = {"servers": [server], "mgmt_address": "127.0.0.1", "mgmt_port": self.mgmt_port,
                  "flushInterval": 3_600_000, "backends": [str(backend)],
                  "dumpFile": str(self.dump)}
        config_path = tmp_path / "statsd-config.js"
        config_path.write_text(json.dumps(config))
        self.log = tmp_path / "statsd.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([node, str(package / "stats.js"), str(config_path)],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            cwd=tmp_path)
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"statsd exited: {self.log.read_text()[-2000:]}")
            try:
                if "health: up" in self.admin("health", end="\n"):
                    return
            except OSError:
                time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(f"statsd did not start: {self.log.read_text()[-2000:]}")

    def admin(self, command: str, end: str = "END\n\n") -> str:
        with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=5) as sock:
            sock.sendall(command.encode() + b"\n")
            data = b""
            while not data.decode(errors="replace").endswith(end):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data.decode()

    def counters(self) -> dict[str, float]:
        return parse_inspect(self.admin("counters"))

    def gauges(self) -> dict[str, float]:
        return parse_inspect(self.admin("gauges"))

    def timers(self) -> dict[str, int]:
        """Number of timer values held per key (the sampled values, not the counts)."""
        found = {}
        for quoted, bare, items in _ARRAY.findall(self.admin("timers")):
            more = re.search(r"\.\.\. (\d+) more item", items)
            shown = items[:more.start()] if more else items
            values = [part for part in re.split(r"[,\s]+", shown) if _is_number(part)]
            found[quoted or bare] = len(values) + (int(more.group(1)) if more else 0)
        return found

    def stop(self) -> dict[str, Any]:
        """SIGTERM (the daemon flushes on exit); its last flush as a dict."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if not self.dump.exists():
            return {}
        return json.loads(self.dump.read_text().strip().splitlines()[-1])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
