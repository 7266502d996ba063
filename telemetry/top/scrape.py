"""The direct source: each instance's own ``/metrics`` and ``/health``.

``/metrics`` is parsed with prometheus_client's parser. An answer it cannot parse,
a /health that is not a JSON object, or an instance that does not answer at all
becomes a reading with an ``error`` (and the samples or the health that did come),
never an exception: the view shows it and tries again at the next refresh.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from telemetry.top.fetch import Credentials, FetchError, get
from telemetry.top.readings import WANTED, Labels, Reading, labels_key

DEFAULT_URL = "http://127.0.0.1:9464"
#: The text format the parser reads (the server would otherwise pick by Accept).
_ACCEPT_TEXT = "text/plain; version=0.0.4"


def parse_metrics(text: str) -> dict[str, dict[Labels, float]]:
    """The :data:`WANTED` samples of a text exposition; raises ValueError on garbage."""
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in WANTED:
                value = float(sample.value)
                if value == value:  # NaN carries nothing to show
                    samples.setdefault(sample.name, {})[labels_key(sample.labels)] = value
    return samples


def parse_health(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


def base_url(url: str) -> str:
    """The server's root: ``host:port`` gets http://, a trailing route is dropped."""
    url = url if "://" in url else f"http://{url}"
    parts = urllib.parse.urlsplit(url)
    path = parts.path.rstrip("/")
    for route in ("/metrics", "/health"):
        path = path.removesuffix(route)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def instance_name(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


class ScrapeSource:
    """Reads every URL's /metrics and /health at once, one reading per URL."""

    kind = "scrape"

    def __init__(self, urls: list[str], credentials: Credentials | None = None,
                 timeout_s: float = 3.0) -> None:
        self.urls = [base_url(url) for url in urls] or [DEFAULT_URL]
        self.credentials = credentials or Credentials()
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return ", ".join(self.urls)

    def history(self) -> list[Reading]:
        """Past readings to start with: a process keeps none."""
        return []

    def read(self) -> list[Reading]:
        jobs = [(url, route) for url in self.urls for route in ("/metrics", "/health")]
        with ThreadPoolExecutor(max_workers=min(len(jobs), 16),
                                thread_name_prefix="yolo-top-fetch") as pool:
            bodies = list(pool.map(lambda job: self._get(*job), jobs))
        taken_at = time.time()
        answers = dict(zip(jobs, bodies, strict=True))
        return [self._reading(url, answers[(url, "/metrics")], answers[(url, "/health")],
                              taken_at) for url in self.urls]

    def _get(self, url: str, route: str) -> bytes | FetchError:
        accept = _ACCEPT_TEXT if route == "/metrics" else "application/json"
        try:
            return get(url + route, self.credentials, self.timeout_s, accept)
        except FetchError as error:
            return error

    def _reading(self, url: str, metrics: bytes | FetchError, health: bytes | FetchError,
                 taken_at: float) -> Reading:
        problems = []
        samples: Mapping[str, Mapping[Labels, float]] = {}
        document = None
        if isinstance(metrics, FetchError):
            problems.append(f"/metrics: {metrics}")
        else:
            try:
                samples = parse_metrics(metrics.decode("utf-8", errors="replace"))
                if not samples:
                    problems.append("/metrics: no yolo samples in the answer")
            except (ValueError, TypeError, IndexError, KeyError) as error:
                problems.append(f"/metrics: unreadable answer ({_short(error)})")
        if isinstance(health, FetchError):
            problems.append(f"/health: {health}")
        else:
            try:
                document = parse_health(health)
            except ValueError as error:
                problems.append(f"/health: unreadable answer ({_short(error)})")
        return Reading(instance_name(url), taken_at, samples, document,
                       "; ".join(problems) or None)


def _short(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:80]
