"""Bounds on what HTTP clients may hold: how many connections, and for how long.

The server gives each connection a thread of its own, so without bounds a client
that opens connections and never finishes a request (slow-loris: one byte every
few seconds, each byte resetting the socket timeout) holds one thread per
connection for ever, and a few thousand of them hold the process's memory and
thread limit.

* :meth:`ConnectionGuard.admit` caps the connections served at once
  (``server.max_connections``). When all are taken, the one that has waited longest
  for its client to finish sending a request is closed to make room (``evicted``):
  a client that sends its request at once, as scrapers and probes do, is still
  served while slow clients hold every slot. When none is waiting (every slot is
  answering a request), the new connection is closed at once instead, before any
  thread is started for it (``refused``).
* :meth:`ConnectionGuard.arm` starts a deadline (``server.request_timeout_s``) for
  what a client must send: the TLS handshake and a request's line and headers, and
  the wait for the next request on a kept-alive connection. A connection still
  short of it at the deadline is shut down, which wakes its thread (blocked in
  ``recv``) with end-of-file, and is counted. The deadline is lifted
  (:meth:`~ConnectionGuard.disarm`) once the request is read, so answering a long
  request (``/debug/profile?seconds=30``) is not cut short; writing the answer is
  bounded by the socket timeout.

One thread of its own waits for the earliest deadline, on a condition, so an idle
server does not wake.

Each closed connection is counted in :meth:`~ConnectionGuard.stats` (``refused``,
``evicted``, ``timed_out``) and reported to :attr:`~ConnectionGuard.on_drop`, when
set, with that reason (e.g. to count it in ``yolo_telemetry_dropped_total``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger("telemetry.server")


class ConnectionGuard:
    """The connection cap and the per-request deadlines of one server."""

    def __init__(self, max_connections: int, request_timeout_s: float) -> None:
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self._clock = time.monotonic
        self._lock = threading.Condition()
        self._active = 0
        self._deadlines: dict[socket.socket, float] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: Connections closed unserved because ``max_connections`` were busy answering.
        self.refused = 0
        #: Connections closed, still sending their request, to make room for new ones.
        self.evicted = 0
        #: Connections shut down because a request was not received in time.
        self.timed_out = 0
        #: Called with the reason of each connection closed by the guard.
        self.on_drop: Callable[[str], None] | None = None

    # -- the cap --------------------------------------------------------------------

    def admit(self) -> bool:
        """Take a connection slot, closing the longest-waiting one if need be; False
        (and counted) when every slot is busy answering a request."""
        with self._lock:
            if self._active < self.max_connections:
                self._active += 1
                return True
            # An evicted connection gives its slot back when its thread returns, a
            # moment later: until then it still counts, up to twice the cap.
            oldest = None
            if self._deadlines and self._active < 2 * self.max_connections:
                oldest = min(self._deadlines, key=self._deadlines.__getitem__)
                del self._deadlines[oldest]
                self.evicted += 1
                self._active += 1
            else:
                self.refused += 1
                refused = self.refused
        if oldest is not None:
            _wake(oldest)
            self._report("evicted")
            return True
        self._report("refused")
        if refused == 1 or refused % 1000 == 0:  # now and then, not once per client
            log.warning("HTTP server: %d connection(s) refused so far, all %d busy "
                        "(server.max_connections)", refused, self.max_connections)
        return False

    def release(self, sock: socket.socket) -> None:
        """Give a connection's slot back when its thread is done with it."""
        with self._lock:
            self._active -= 1
            self._deadlines.pop(sock, None)

    @property
    def active(self) -> int:
        return self._active

    # -- the deadline ----------------------------------------------------------------

    def arm(self, sock: socket.socket) -> None:
        """The client must send a whole request within ``request_timeout_s`` from now."""
        with self._lock:
            if self._stopping:
                return
            self._deadlines[sock] = self._clock() + self.request_timeout_s
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, daemon=True,
                                                name="telemetry-http-deadlines")
                self._thread.start()
            elif len(self._deadlines) == 1:
                self._lock.notify()  # it waits without a timeout when nothing is armed

    def disarm(self, sock: socket.socket) -> None:
        """The request is read: answering it is not bounded by the deadline."""
        with self._lock:
            self._deadlines.pop(sock, None)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._deadlines.clear()
            self._lock.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"active": self._active, "waiting": len(self._deadlines),
                    "max_connections": self.max_connections,
                    "refused": self.refused, "evicted": self.evicted,
                    "timed_out": self.timed_out}

    def _watch(self) -> None:
        while True:
            with self._lock:
                while True:
                    if self._stopping:
                        return
                    now = self._clock()
                    due = [sock for sock, at in self._deadlines.items() if at <= now]
                    if due:
                        break
                    earliest = min(self._deadlines.values(), default=None)
                    self._lock.wait(None if earliest is None else earliest - now)
                for sock in due:
                    del self._deadlines[sock]
                self.timed_out += len(due)
            for sock in due:
                _wake(sock)
                self._report("timed_out")

    def _report(self, reason: str) -> None:
        if self.on_drop is not None:
            try:
                self.on_drop(reason)
            except Exception:  # counting must not break serving
                log.exception("counting a closed connection failed")


def _wake(sock: socket.socket) -> None:
    """Shut a connection down so that its thread, blocked reading it, returns.

    The plain socket's shutdown, also for a TLS socket: ``SSLSocket.shutdown``
    would unset the TLS state under the thread still using it.
    """
    with contextlib.suppress(OSError):  # already closed by its own thread
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
