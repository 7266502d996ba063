"""TCP to a server that accepts connections and never reads them: sends fail, and
keep failing without a new connection, until the server reads or drops the old one."""

from __future__ import annotations

import socket
import sys

import pytest

from exporters.statsd.transport import TcpTransport, unacknowledged

pytestmark = pytest.mark.skipif(sys.platform != "linux",
                                reason="unacknowledged bytes are known on Linux only")


def fill(transport: TcpTransport) -> OSError:
    """Send until a send fails (both ends' buffers full); return the error."""
    for _ in range(10_000):
        try:
            transport.send(b"yolo.x:1|c\n" * 6000)
        except OSError as error:
            return error
    raise AssertionError("the sends never failed")


def accepted(listener: socket.socket) -> int:
    """Connections waiting in the listener's backlog (accepted and closed here)."""
    listener.setblocking(False)
    count = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def test_no_reconnect_until_the_unread_connection_is_read() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        transport = TcpTransport("127.0.0.1", listener.getsockname()[1], timeout_s=0.2,
                                 max_backoff_s=0.01, clock=lambda: 1e9)  # never backing off
        try:
            assert isinstance(fill(transport), TimeoutError)
            unread = transport._unread
            assert unread is not None and unacknowledged(unread) > 0
            for _ in range(5):  # flush after flush: failing, and no new connection
                assert transport.pending_error() is None
                with pytest.raises(TimeoutError, match="has not read"):
                    transport.send(b"yolo.x:1|c")
            listener.setblocking(False)
            server_side, _ = listener.accept()  # the one connection ever made
            assert accepted(listener) == 0
            # The server reads it all and sees the end of file: the next flush reconnects.
            server_side.settimeout(5)
            while server_side.recv(1 << 20):
                pass
            server_side.close()
            assert transport.pending_error() is None
            transport.send(b"yolo.x:1|c")
            assert transport._unread is None
            assert accepted(listener) == 1
        finally:
            transport.close()


def test_bytes_left_unacknowledged_from_the_last_flush_fail_the_next() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        transport = TcpTransport("127.0.0.1", listener.getsockname()[1], timeout_s=0.5)
        try:
            transport.send(b"yolo.x:1|c")
            assert transport.pending_error() is None
            transport.send(b"yolo.x:1|c")  # acknowledged by the kernel: fine
            transport._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            with pytest.raises(OSError):  # until both buffers are full
                for _ in range(10_000):
                    transport._sock.setblocking(False)
                    transport._sock.send(b"y" * 4096)
            transport._sock.settimeout(0.5)
            assert transport.pending_error() is None
            with pytest.raises(TimeoutError, match="not acknowledged"):
                transport.send(b"yolo.x:1|c")
            assert transport._sock is not None  # kept: the server may read it yet
        finally:
            transport.close()
