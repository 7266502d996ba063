"""HTTP/1.1 as the plain OTLP transport speaks it: a request head written once, and
the answer read straight off the socket.

:class:`~exporters.otlp.fastpath.span_transport.PlainHTTPTransport` sends one kind of
request again and again (a POST of protobuf bytes to the same path with the same
headers) and gets small answers back. Written by a general HTTP library (``h11``: an
event object per part of each message, a state machine, every header checked again
on every request), a 512-span batch's send cost 430-660 µs of the span export
thread's CPU while the orchestrator ran beside it, a quarter of that thread's work;
written here (a cached head, the body's length, one send, and a parse of the
answer's few lines) it costs 270-350 µs, most of it the socket calls and the SDK's
client around them (docs/otlp.md, "Span export: where a span's CPU goes").

* :func:`request_head` validates the request line and headers once and returns the
  head up to the ``Content-Length`` value; the caller caches it and appends the
  length and the body to each request.
* :func:`read_answer` reads the final answer (1xx interim answers are skipped) and its
  body, framed by ``Content-Length``, chunked, or by the end of the connection (RFC
  9112, section 6.3), and says whether the connection may carry the next request.
  Anything malformed, too long, or cut short raises :class:`AnswerError` (a
  ``ConnectionError``: the transport drops the connection, and the SDK's client
  retries once on a new one).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from typing import NamedTuple

#: A header name (RFC 9110 token), and a header value: no control characters but tab.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BLANKS = " \t"
#: A request target: no spaces or control characters.
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(rb"[0-9]{1,19}")

#: The longest answer head (status line and headers), and chunk-size or trailer line.
MAX_HEAD = 64 * 1024
#: Interim (1xx) answers skipped before the final one, at most.
_MAX_INTERIM = 16
#: Trailer fields after a chunked body, at most.
_MAX_TRAILERS = 64
#: Answers without a body, whatever their headers say.
_NO_BODY = frozenset({204, 304})


class AnswerError(ConnectionError):
    """The collector's answer is malformed, too long, or cut short."""


class Answer(NamedTuple):
    """A final answer: status, reason, header fields (names lower-case, as bytes),
    body, and whether the connection may carry another request."""

    status: int
    reason: str
    fields: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


def request_head(method: str, target: str, host: str,
                 headers: Iterable[tuple[str, str]]) -> bytes:
    """The request line and header fields, ending with ``Content-Length: `` (the
    caller appends the length, a blank line and the body). Raises ValueError for a
    method, target or header that cannot be sent as it is (a line break in a value:
    header injection)."""
    if not _TOKEN.fullmatch(method) or not target or _BAD_TARGET.search(target):
        raise ValueError(f"cannot send a request line with {method!r} {target!r}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"cannot send the header {name!r}: not a valid name or value")
        lines.append(f"{name}: {value.strip(_BLANKS)}")
    lines.append("Content-Length: ")
    return "\r\n".join(lines).encode("latin-1")  # UnicodeEncodeError is a ValueError


class _Reader:
    """What the socket gave so far, read up to a mark or a length."""

    __slots__ = ("buffer", "sock")

    def __init__(self, sock: socket.socket, received: bytes = b"") -> None:
        self.sock = sock
        self.buffer = bytearray(received)

    def _more(self) -> bool:
        """Read what the socket has; False when the collector closed it."""
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def until(self, mark: bytes, limit: int) -> bytes:
        """The bytes before ``mark`` (taken off with the mark)."""
        start = 0
        while (at := self.buffer.find(mark, start)) < 0:
            if len(self.buffer) > limit:
                raise AnswerError("the collector's answer has a line too long")
            start = max(len(self.buffer) - len(mark) + 1, 0)
            if not self._more():
                raise ConnectionResetError("the collector closed the connection")
        if at > limit:
            raise AnswerError("the collector's answer has a line too long")
        data = bytes(self.buffer[:at])
        del self.buffer[:at + len(mark)]
        return data

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._more():
                raise ConnectionResetError("the collector closed the connection mid-answer")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def to_the_end(self, limit: int) -> bytes:
        """Everything until the collector closes the connection."""
        while len(self.buffer) <= limit and self._more():
            pass
        if len(self.buffer) > limit:
            raise AnswerError("the collector's answer is too long")
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def read_answer(sock: socket.socket, method: str, max_body: int,
                received: bytes = b"") -> Answer:
    """The final answer to the request just sent on ``sock`` (see the module), of
    which ``received`` was already read off it."""
    reader = _Reader(sock, received)
    for _ in range(_MAX_INTERIM + 1):
        version, status, reason, fields = _head(reader.until(b"\r\n\r\n", MAX_HEAD))
        if status >= 200:
            break
        if status == 101:
            raise AnswerError("the collector switched protocols")
    else:
        raise AnswerError("the collector sent too many interim answers")
    keep_alive = version == b"HTTP/1.1"
    length = coding = None
    for name, value in fields:
        if name == b"connection" and b"close" in _tokens(value):
            keep_alive = False
        elif name == b"content-length":
            length = _content_length(value, length)
        elif name == b"transfer-encoding":
            coding = value.lower()
    if status in _NO_BODY or method == "HEAD":
        body = b""
    elif coding is not None:  # it wins over any Content-Length (RFC 9112, 6.3)
        if _tokens(coding)[-1] == b"chunked":
            body = _chunked(reader, max_body)
        else:
            body, keep_alive = reader.to_the_end(max_body), False
    elif length is not None:
        if length > max_body:
            raise AnswerError("the collector's answer is too long")
        body = reader.exactly(length)
    else:
        body, keep_alive = reader.to_the_end(max_body), False
    if reader.buffer:  # bytes nobody asked for: the connection cannot be trusted
        keep_alive = False
    return Answer(status, reason, fields, body, keep_alive)


def _head(head: bytes) -> tuple[bytes, int, str, list[tuple[bytes, bytes]]]:
    """(version, status, reason, fields) of an answer's head."""
    status_line, *lines = head.split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise AnswerError(f"not an HTTP/1.x answer: {status_line[:64]!r}")
    fields = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in (b" ", b"\t") or line[:1] in (b" ", b"\t"):
            raise AnswerError(f"a malformed header line: {line[:64]!r}")
        fields.append((name.lower(), value.strip(b" \t")))
    return version, int(code), reason.decode("latin-1"), fields


def _tokens(value: bytes) -> list[bytes]:
    """A comma-separated header value's tokens, lower-case."""
    return [token.strip(b" \t") for token in value.lower().split(b",")]


def _content_length(value: bytes, before: int | None) -> int:
    """The body's length; repeated values must agree (RFC 9110, 8.6)."""
    lengths = {part.strip() for part in value.split(b",")}
    if len(lengths) != 1 or not _DIGITS.fullmatch(next(iter(lengths))):
        raise AnswerError(f"an invalid Content-Length: {value[:64]!r}")
    length = int(next(iter(lengths)))
    if before is not None and before != length:
        raise AnswerError("two different Content-Length headers")
    return length


def _chunked(reader: _Reader, max_body: int) -> bytes:
    """A chunked body, its trailer fields read and left out."""
    parts, size = [], 0
    while True:
        line = reader.until(b"\r\n", MAX_HEAD)
        text = line.split(b";", 1)[0].strip(b" \t")  # chunk extensions are ignored
        if not _HEX.fullmatch(text):
            raise AnswerError(f"an invalid chunk size: {line[:64]!r}")
        chunk = int(text, 16)
        if chunk == 0:
            break
        size += chunk
        if size > max_body:
            raise AnswerError("the collector's answer is too long")
        parts.append(reader.exactly(chunk))
        if reader.exactly(2) != b"\r\n":
            raise AnswerError("a chunk without its line end")
    for _ in range(_MAX_TRAILERS):  # trailer fields, up to a blank line
        if not reader.until(b"\r\n", MAX_HEAD):
            return b"".join(parts)
    raise AnswerError("too many trailer fields")
