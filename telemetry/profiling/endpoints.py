"""The /debug endpoints and the :class:`Profiling` object behind them.

``GET /debug/profile?seconds=N&format=speedscope|collapsed|html|text&threads=all|orchestrator``
    Samples every thread of the process (or, with ``threads=orchestrator``, only
    the threads that send signals) for N seconds (at most
    ``debug.profile_max_seconds``) and answers the profile. One at a time: a second
    request while one runs gets 409; a bad ``seconds``, ``format`` or ``threads``
    gets 400.
``GET /debug/slow``
    The kept slow-operation captures, newest first (JSON).
``GET /debug/slow/<id>?format=...``
    One capture's samples, in the same formats as /debug/profile.

They exist only when ``debug.enabled`` is true (404 otherwise) and are served
behind the server's auth like every route. On a loopback address the server then
answers only requests whose ``Host`` is a loopback name or address (421 otherwise),
so a web page cannot reach them through DNS rebinding.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from telemetry.aggregation.aggregator import Aggregator
from telemetry.config import DebugConfig
from telemetry.profiling import render
from telemetry.profiling.slow import SlowOperations
from telemetry.profiling.stacks import Profile, SignalThreads, sample_process
from telemetry.serving.server import Request, Response, TelemetryServer

#: Default ``seconds`` of /debug/profile when the query gives none.
DEFAULT_PROFILE_SECONDS = 10.0
#: Capture ids are counted from 1; longer ones are not looked up (nor parsed).
MAX_CAPTURE_ID_DIGITS = 18


class ProfileBusy(RuntimeError):
    """Another profile is running; profiles are not run concurrently."""


class Profiling:
    """On-demand profiles and slow-operation capture for one running Telemetry."""

    def __init__(self, aggregator: Aggregator, config: DebugConfig,
                 server: TelemetryServer | None = None) -> None:
        self.config = config
        self.aggregator = aggregator
        self.threads = SignalThreads()
        self.slow: SlowOperations | None = (
            SlowOperations(config.slow, self.threads, aggregator) if config.slow.enabled
            else None)
        self._busy = threading.Lock()
        self._stopping = threading.Event()
        self._listener = self._on_event if self.slow is not None else self._note_thread
        aggregator.add_listener(self._listener)
        if server is not None:
            server.check_host = True
            server.route("/debug/profile", self._profile_route)
            server.route("/debug/slow", self._slow_route, prefix=True)
        if self.slow is not None:
            self.slow.start()

    def _note_thread(self, signal_name: str, fields: dict[str, Any], timestamp: float) -> None:
        self.threads.note()

    def _on_event(self, signal_name: str, fields: dict[str, Any], timestamp: float) -> None:
        self.threads.note()
        self.slow.on_event(signal_name, fields, timestamp)  # type: ignore[union-attr]

    def stop(self) -> None:
        """End a running profile early and stop the slow-operation sampler."""
        self._stopping.set()
        self.aggregator.remove_listener(self._listener)
        if self.slow is not None:
            self.slow.stop()

    def profile(self, seconds: float, interval_s: float | None = None,
                orchestrator_only: bool = False) -> Profile:
        """Sample every thread (or only those that send signals) for ``seconds``.

        Raises :class:`ProfileBusy` if a profile is already running.
        """
        if not self._busy.acquire(blocking=False):
            raise ProfileBusy("a profile is already running")
        try:
            return sample_process(
                seconds, interval_s or self.config.profile_interval_s, stop=self._stopping,
                first=self.threads.idents, only_first=orchestrator_only,
                title=f"yolo-telemetry profile, {seconds:g}s from "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
        finally:
            self._busy.release()

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    # -- HTTP -----------------------------------------------------------------------

    def _profile_route(self, request: Request) -> Response:
        maximum = self.config.profile_max_seconds
        raw = request.arg("seconds")
        try:
            seconds = float(raw) if raw is not None else min(DEFAULT_PROFILE_SECONDS, maximum)
        except ValueError:
            seconds = math.nan
        if not (0 < seconds <= maximum):
            return Response.text(f"seconds must be a number > 0 and <= {maximum:g} "
                                 f"(debug.profile_max_seconds); got {raw!r}\n", 400)
        threads = request.arg("threads", "all")
        if threads not in ("all", "orchestrator"):
            return Response.text(f"threads must be all or orchestrator; got {threads!r}\n", 400)
        chosen = _format(request)
        if isinstance(chosen, Response):
            return chosen
        if request.method == "HEAD":
            return Response(200, b"", chosen.content_type)
        try:
            profile = self.profile(seconds, orchestrator_only=threads == "orchestrator")
        except ProfileBusy:
            return Response.text("another profile is running; retry when it ends\n", 409)
        return _rendered(profile, chosen, "profile")

    def _slow_route(self, request: Request) -> Response:
        rest = request.path.removeprefix("/debug/slow").strip("/")
        if not rest:
            return Response.json(self.slow_listing())
        if self.slow is None:
            return Response.text("slow-operation capture is off (debug.slow.enabled)\n", 404)
        # str.isdigit() accepts "²" and other digits int() refuses, and int() refuses
        # more than 4300 digits: an id is ASCII digits, and short.
        if not (rest.isascii() and rest.isdigit() and len(rest) <= MAX_CAPTURE_ID_DIGITS):
            return Response.text(f"no capture {rest[:40]!r}: an id is a number "
                                 f"(GET /debug/slow lists them)\n", 404)
        capture = self.slow.get(int(rest))
        if capture is None:
            return Response.text(f"no capture {rest!r} (only the last "
                                 f"{self.config.slow.max_captures} are kept)\n", 404)
        if request.arg("format") == "json":
            return Response.json(capture.summary())
        chosen = _format(request)
        if isinstance(chosen, Response):
            return chosen
        return _rendered(capture.profile, chosen, f"slow-{capture.id}")

    def slow_listing(self) -> dict[str, Any]:
        slow = self.config.slow
        listing: dict[str, Any] = {"enabled": self.slow is not None}
        if self.slow is None:
            listing["hint"] = "set debug.slow.enabled: true to capture slow operations"
        listing.update({
            "threshold_s": slow.threshold_s, "operations": list(slow.operations),
            "max_captures": slow.max_captures,
            "captures": [c.summary() for c in self.slow.captures()] if self.slow else [],
        })
        return listing


def _format(request: Request) -> render.Format | Response:
    name = request.arg("format", "speedscope")
    chosen = render.FORMATS.get(name or "")
    if chosen is None:
        return Response.text(f"format must be one of {', '.join(render.FORMATS)}; "
                             f"got {name!r}\n", 400)
    if chosen.needs_pyinstrument and not render.pyinstrument_available():
        return Response.text(f"format {name} needs pyinstrument: "
                             f"pip install yolo-telemetry[profiling]\n", 501)
    return chosen


def _rendered(profile: Profile, chosen: render.Format, stem: str) -> Response:
    body = render.render(profile, chosen.name)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(profile.started_at))
    response = Response(200, body, chosen.content_type)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{stem}-{stamp}.{chosen.extension}"')
    response.headers["X-Profile-Samples"] = str(profile.sample_count)
    response.headers["X-Profile-Sampler-CPU-Seconds"] = f"{profile.sampler_cpu_s:.6f}"
    return response
