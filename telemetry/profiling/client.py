"""``yolo-telemetry profile URL``: fetch a profile from a running instance.

A thin client of ``/debug/profile``: it sends the request, waits for the sampling
to finish, writes the answer to a file and says how to open it. Errors from the
server (404 debug off, 401 credentials, 409 busy, 400 bad arguments) become one
readable line and exit status 1.
"""

from __future__ import annotations

import argparse
import base64
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from telemetry.profiling.render import FORMATS

EXIT_FAILED = 1

_OPEN_HINTS = {
    "speedscope": "open it at https://www.speedscope.app (or: npx speedscope {file})",
    "collapsed": "make a flame graph with: flamegraph.pl {file} > flame.svg",
    "html": "open it in a browser",
    "text": "read it with: less {file}",
}


class FetchError(RuntimeError):
    """The profile could not be fetched; the message says why, for a terminal."""


def profile_url(base: str, seconds: float, format_name: str, threads: str = "all") -> str:
    """``base`` (a server URL, or the endpoint itself) with path and query filled in."""
    parts = urllib.parse.urlsplit(base if "://" in base else f"http://{base}")
    path = parts.path.rstrip("/")
    if not path.endswith("/debug/profile"):
        path += "/debug/profile"
    query = urllib.parse.urlencode({"seconds": f"{seconds:g}", "format": format_name,
                                    "threads": threads})
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def fetch_profile(url: str, *, token: str | None = None, user: str | None = None,
                  cafile: str | None = None, timeout_s: float = 90.0) -> tuple[bytes, str]:
    """GET ``url``; returns the body and the samples header, or raises :class:`FetchError`."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    elif user:
        credentials = base64.b64encode(user.encode()).decode()
        request.add_header("Authorization", f"Basic {credentials}")
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            return response.read(), response.headers.get("X-Profile-Samples", "?")
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace").strip()
        raise FetchError(_explain(error.code, detail)) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(f"cannot reach {url}: {reason}") from None


def _explain(status: int, detail: str) -> str:
    if status == 404:
        return ("404: no /debug/profile here; profiling is off unless the instance runs "
                "with debug.enabled: true")
    if status == 401:
        return "401: the server needs credentials; pass --token or --user USER:PASSWORD"
    if status == 409:
        return "409: another profile is running on this instance; retry when it ends"
    return f"{status}: {detail}"


def run_profile(args: argparse.Namespace) -> int:
    url = profile_url(args.url, args.seconds, args.format, args.threads)
    user = args.user
    if user and ":" not in user:
        user = f"{user}:{os.environ.get('YOLO_TELEMETRY_PASSWORD', '')}"
    print(f"profiling {url.split('?')[0]} for {args.seconds:g}s...", file=sys.stderr)
    try:
        body, samples = fetch_profile(url, token=args.token, user=user, cafile=args.cafile,
                                      timeout_s=args.seconds + 30.0)
    except FetchError as error:
        print(f"yolo-telemetry profile: {error}", file=sys.stderr)
        return EXIT_FAILED
    output = args.output or (f"profile-{time.strftime('%Y%m%d-%H%M%S')}."
                             f"{FORMATS[args.format].extension}")
    if output == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return 0
    with open(output, "wb") as file:
        file.write(body)
    hint = _OPEN_HINTS[args.format].format(file=output)
    print(f"wrote {output} ({len(body)} bytes, {samples} samples); {hint}", file=sys.stderr)
    return 0


def add_profile_command(commands: argparse._SubParsersAction) -> None:
    """The ``profile`` subcommand of ``yolo-telemetry``."""
    parser = commands.add_parser(
        "profile", help="fetch a sampling profile of a running instance (/debug/profile)")
    parser.add_argument("url", help="the telemetry server, e.g. http://127.0.0.1:9464")
    parser.add_argument("--seconds", "-s", type=float, default=10.0,
                        help="how long to sample (default 10; at most debug.profile_max_seconds)")
    parser.add_argument("--format", "-f", choices=sorted(FORMATS), default="speedscope",
                        help="speedscope (default), collapsed, html or text")
    parser.add_argument("--threads", choices=("all", "orchestrator"), default="all",
                        help="every thread (default) or only those that send signals")
    parser.add_argument("--output", "-o", default=None,
                        help="file to write (default profile-<time>.<ext>; - for stdout)")
    parser.add_argument("--token", default=os.environ.get("YOLO_TELEMETRY_TOKEN"),
                        help="bearer token (default $YOLO_TELEMETRY_TOKEN)")
    parser.add_argument("--user", default=None,
                        help="basic auth as USER:PASSWORD (or USER with "
                             "$YOLO_TELEMETRY_PASSWORD)")
    parser.add_argument("--cafile", default=None, help="CA bundle for a TLS server")
    parser.set_defaults(run=run_profile)
