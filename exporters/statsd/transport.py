"""Plain-socket transports for the StatsD exporter (UDP and TCP).

Both raise :class:`OSError` on a failed send instead of swallowing it, so the
exporter can count the failure, keep what was not delivered and report the
server as failing in /health.

UDP uses a *connected* socket: on Linux an ICMP "port unreachable" for a
connected socket is queued on it as ``ECONNREFUSED``. On loopback the ICMP is
processed within the send itself, so checking ``SO_ERROR`` right after each
datagram tells whether that datagram was refused; from a remote host the error
arrives later and is seen on the next send or check.

TCP connects lazily with a timeout and reconnects after a failure with
exponential backoff, so a black-holed server costs at most one connect timeout
per backoff step rather than one per flush.

Over TCP a successful send (or connect) only means the server's *kernel* took the
bytes: a daemon that is stopped (SIGSTOP) or wedged still has its connections
accepted and acknowledged until its socket buffers fill. So the TCP transport
also watches whether the server *reads* (Linux, where the bytes a socket still
holds unacknowledged are known; elsewhere only failed sends count):

* bytes written before the previous flush and still unacknowledged at the next
  one mean the server stopped reading: that flush fails without writing more;
* a connection whose send failed is not simply closed and replaced (the new
  connection would be accepted and "work" just the same): it is half-closed and
  kept, and no new one is opened until the server has read it to the end
  (everything acknowledged) or dropped it (end of file, reset). Until then
  every flush fails, so /health says ``failing`` for as long as the server does
  not read, and nothing more is written into a connection nobody reads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence

try:  # compiled builds: a burst of datagrams with one release of the GIL
    from exporters.statsd.burst import send_datagrams as _send_datagrams
except ImportError:
    _send_datagrams = None

if sys.platform == "linux":
    import fcntl
    import termios

    #: ``ioctl`` asking a TCP socket how many bytes it holds that the peer has not
    #: acknowledged yet: Linux's SIOCOUTQ, which has TIOCOUTQ's number.
    _SIOCOUTQ: int | None = termios.TIOCOUTQ
else:
    _SIOCOUTQ = None


def unacknowledged(sock: socket.socket) -> int:
    """Bytes written to ``sock`` that its peer has not acknowledged yet (0 when the
    platform cannot tell)."""
    if _SIOCOUTQ is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0" * 4))[0]
    except OSError:
        return 0


class Transport:
    """Sends payloads of newline-separated lines to one StatsD server."""

    def __init__(self, host: str, port: int, timeout_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._clock = clock
        self._sock: socket.socket | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def ready(self) -> bool:
        """False while a reconnect backoff is running: skip this attempt."""
        return True

    def pending_error(self) -> OSError | None:
        """An error the socket reported after the last send (UDP: a late refusal)."""
        return None

    def send(self, payload: bytes, deadline: float | None = None) -> None:
        raise NotImplementedError

    def send_burst(self, payloads: Sequence[bytes],
                   deadline: float | None = None) -> tuple[int, OSError | None]:
        """Send ``payloads`` in order until one fails: how many went out, and the
        failure of the next (None when all did)."""
        for sent, payload in enumerate(payloads):
            try:
                self.send(payload, deadline)
            except OSError as error:
                return sent, error
        return len(payloads), None

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _resolve(self, kind: socket.SocketKind) -> tuple[int, tuple]:
        family, _, _, _, address = socket.getaddrinfo(self.host, self.port, 0, kind)[0]
        return family, address

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self.timeout_s
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise TimeoutError("flush deadline passed")
        return min(self.timeout_s, remaining)


class UdpTransport(Transport):
    """One connected datagram socket; each payload is one datagram.

    The socket does not block: a datagram goes out in one system call, and only
    when the socket's send buffer is full does the send wait for room, at most the
    timeout (or until the flush's deadline). A socket with a timeout asks the kernel
    whether it can write before every send, and setting the timeout is a system call
    of its own.

    Each system call lets the GIL go, and taking it back from a thread that runs
    Python meanwhile (a busy orchestrator) costs far more than the call: about 40 us
    of CPU a datagram against 4. A compiled build sends a burst with one release
    (:meth:`send_burst`).
    """

    def _socket(self) -> socket.socket:
        if self._sock is None:
            family, address = self._resolve(socket.SOCK_DGRAM)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.connect(address)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def pending_error(self) -> OSError | None:
        if self._sock is None:
            return None
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return OSError(code, os.strerror(code)) if code else None

    def send(self, payload: bytes, deadline: float | None = None) -> None:
        sock = self._socket()
        timeout = self._timeout(deadline)  # raises once the deadline has passed
        try:
            try:
                sock.send(payload)
            except BlockingIOError:  # the send buffer is full: wait for room
                _, writable, _ = select.select([], [sock], [], timeout)
                if not writable:
                    raise TimeoutError(f"no room to send within {timeout:.3g} s") from None
                sock.send(payload)
        except ConnectionRefusedError:
            raise  # the socket stays usable: the server may come back
        except OSError:
            self.close()  # e.g. the route or the address changed: start afresh
            raise
        refused = self.pending_error()
        if refused is not None:
            raise refused

    def send_burst(self, payloads: Sequence[bytes],
                   deadline: float | None = None) -> tuple[int, OSError | None]:
        """As :meth:`Transport.send_burst`; compiled, the datagrams go out with one
        release of the GIL (:mod:`exporters.statsd.burst`) instead of one each, and
        the one that did not (refused, no room in the send buffer, any error) is
        sent again by :meth:`send`, which waits for room or raises and closes as it
        always does."""
        if _send_datagrams is None or not payloads:
            return super().send_burst(payloads, deadline)
        try:
            self._timeout(deadline)  # raises once the deadline has passed
            sock = self._socket()
        except OSError as error:
            return 0, error
        sent, code = _send_datagrams(sock.fileno(), tuple(payloads))
        if not code:
            return sent, None
        more, error = super().send_burst(payloads[sent:], deadline)
        return sent + more, error


class TcpTransport(Transport):
    """A stream connection; each payload is written followed by a newline."""

    def __init__(self, host: str, port: int, timeout_s: float, max_backoff_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(host, port, timeout_s, clock)
        self.max_backoff_s = max_backoff_s
        self._failures = 0
        self._retry_at = 0.0
        #: A connection whose send failed, half-closed, until the server read it all.
        self._unread: socket.socket | None = None
        #: Why this flush must not write (set by :meth:`pending_error`, raised by send).
        self._stalled: OSError | None = None

    def ready(self) -> bool:
        return self._sock is not None or self._clock() >= self._retry_at

    def pending_error(self) -> OSError | None:
        """Checked at the start of each flush: a server that closed the connection
        makes it readable with EOF (returned). One that does not read what was
        written makes this flush's sends fail (see the module doc)."""
        self._stalled = None
        if self._unread is not None and not self._read_to_the_end(self._unread):
            self._stalled = TimeoutError(
                errno.ETIMEDOUT, f"the server has not read the {unacknowledged(self._unread)} "
                f"bytes left on the connection whose send failed (stopped or overloaded?); "
                f"not reconnecting until it does")
            return None
        if self._sock is None:
            return None
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
            if readable and not self._sock.recv(1, socket.MSG_PEEK):
                self.close()
                return ConnectionResetError(errno.ECONNRESET, "the server closed the connection")
        except OSError as error:
            self.close()
            return error
        waiting = unacknowledged(self._sock)
        if waiting:
            self._stalled = TimeoutError(
                errno.ETIMEDOUT, f"the server has not acknowledged {waiting} bytes written "
                f"by an earlier flush: it is not reading (stopped or overloaded?)")
        return None

    def _read_to_the_end(self, sock: socket.socket) -> bool:
        """Whether the server read everything on the half-closed ``sock`` or dropped
        it; if so, it is closed and forgotten."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            done = (readable and not sock.recv(4096)) or unacknowledged(sock) == 0
        except OSError:  # reset: the server dropped it
            done = True
        if done:
            self._unread = None
            sock.close()
        return bool(done)

    def _retire(self) -> None:
        """After a failed send: keep the connection, half-closed, while the server
        has bytes of it to read; close it otherwise."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if unacknowledged(sock) == 0:
            sock.close()
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)  # end of file after what it holds
        if self._unread is not None:
            self._unread.close()
        self._unread = sock

    def close(self) -> None:
        super().close()
        unread, self._unread = self._unread, None
        if unread is not None:
            unread.close()

    def _connect(self, deadline: float | None) -> socket.socket:
        if self._sock is None:
            family, address = self._resolve(socket.SOCK_STREAM)
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self._timeout(deadline))
            try:
                sock.connect(address)
            except OSError:
                sock.close()
                raise
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
        return self._sock

    def send(self, payload: bytes, deadline: float | None = None) -> None:
        if self._stalled is not None:
            raise self._stalled  # nothing written: the server is not reading
        if self._unread is not None and not self._read_to_the_end(self._unread):
            raise TimeoutError(errno.ETIMEDOUT, "the server has not read the connection "
                               "whose send failed; not reconnecting until it does")
        try:
            sock = self._connect(deadline)
            sock.settimeout(self._timeout(deadline))
            sock.sendall(payload + b"\n")
        except OSError:
            self._retire()
            self._failures += 1
            backoff = min(self.max_backoff_s, 0.5 * 2 ** min(self._failures - 1, 16))
            self._retry_at = self._clock() + backoff
            raise
        self._failures = 0


def make_transport(protocol: str, host: str, port: int, timeout_s: float,
                   max_backoff_s: float) -> Transport:
    if protocol == "tcp":
        return TcpTransport(host, port, timeout_s, max_backoff_s)
    return UdpTransport(host, port, timeout_s)
