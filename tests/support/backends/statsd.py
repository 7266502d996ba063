"""The Etsy StatsD daemon from npm on loopback, read through its admin interface."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.backends.common import (
    DEFAULT_TIMEOUT,
    LOOPBACK,
    REPO_ROOT,
    BackendTimeout,
    T,
    _owns_port,
    _Process,
    _start_with_retries,
    free_port,
    require_backend,
    restart_process,
    wait_until,
)
from tests.support.backends.js_inspect import _js_number, parse_js_inspect

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
    candidates.append(REPO_ROOT / ".cache" / "statsd")
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
        # The UDP bind fails asynchronously, after the admin port already answers, so
        # check that the daemon really holds its UDP port.
        return (
            _owns_port(proc.pid, self.admin_port, "tcp")
            and self.admin("health").strip() == "health: up"
            and _owns_port(proc.pid, self.port, "udp")
        )

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
        self._process = restart_process(self._make_process, self._healthy, timeout,
                                        "statsd to answer on its admin port again")

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
        """The final flush of the stopped daemon: counters, gauges, timers, timer_counters,
        timer_data, counter_rates and sets, exactly as StatsD handed them to its backends.

        Raises while the daemon runs, since any earlier flush would be stale.
        """
        if self.running:
            raise RuntimeError("statsd is running: call stop() first (it flushes on SIGTERM)")
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

    It is found in ``$YOLO_TELEMETRY_STATSD_DIR`` or ``.cache/statsd`` (each a folder
    with ``node_modules/statsd``; ``.ci/run`` installs it in the latter). The flush
    interval is a day, so values accumulate for the whole test and the admin tables
    show everything; its only backend is a probe that records raw datagrams and the
    final flush.
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
