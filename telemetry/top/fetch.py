"""HTTP GETs with the server's auth and TLS options, bounded in time and size.

Every failure (refused, timed out, TLS, an HTTP error status, an answer too large)
becomes a :class:`FetchError` whose message fits on one line of the view: a server
that hangs or answers garbage must not hang or crash the view.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

#: An answer larger than this is refused rather than held in memory.
MAX_BODY_BYTES = 32 * 1024 * 1024
_CHUNK = 64 * 1024


class FetchError(RuntimeError):
    """The answer could not be had; the message says why, in a few words."""


@dataclass(frozen=True)
class Credentials:
    """What the client presents: the server's ``auth`` (bearer or basic) and a CA
    bundle for its ``tls`` certificate."""

    token: str | None = None
    user: str | None = None  # USER:PASSWORD, or USER with $YOLO_TELEMETRY_PASSWORD
    cafile: str | None = None

    def authorization(self) -> str | None:
        if self.token:
            return f"Bearer {self.token}"
        if self.user:
            user = self.user
            if ":" not in user:
                user = f"{user}:{os.environ.get('YOLO_TELEMETRY_PASSWORD', '')}"
            return "Basic " + base64.b64encode(user.encode()).decode()
        return None

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)


def get(url: str, credentials: Credentials, timeout_s: float,
        accept: str = "*/*") -> bytes:
    """The body of a 200 answer to GET ``url``, read within ``timeout_s`` in all."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(url, headers={"Accept": accept})
    authorization = credentials.authorization()
    if authorization:
        request.add_header("Authorization", authorization)
    context = credentials.tls_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as answer:
            return _read_body(answer, deadline)
    except urllib.error.HTTPError as error:
        if error.code == 503 and url.endswith("/health"):
            return _read_body(error, deadline)  # unhealthy: the document still says why
        raise FetchError(_status_text(error.code)) from None
    except urllib.error.URLError as error:
        raise FetchError(_reason_text(error.reason)) from None
    except TimeoutError:
        raise FetchError(f"no answer within {timeout_s:g}s") from None
    except (OSError, ValueError) as error:  # reset mid-answer, bad status line, bad URL
        raise FetchError(_reason_text(error)) from None


def _read_body(answer: object, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchError("answer too slow (timed out mid-body)")
        chunk = answer.read(_CHUNK)  # type: ignore[attr-defined]
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise FetchError(f"answer larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)


def _status_text(code: int) -> str:
    if code == 401:
        return "401: credentials needed (--token or --user)"
    if code == 403:
        return "403: these credentials are refused"
    if code == 404:
        return "404: not a yolo-telemetry server (no such route)"
    return f"HTTP {code}"


def _reason_text(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "no answer (timed out)"
    if isinstance(reason, ssl.SSLError):
        return f"TLS: {reason.reason or reason}"
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0][:120]
