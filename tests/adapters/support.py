"""Shared by the frameworks' test folders: recording the signals an adapter sends,
reading what the adapter tests scrape, and running the examples of docs/adapters/ as a
user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import blinker
from prometheus_client.parser import text_string_to_metric_families

from telemetry import Telemetry
from telemetry.signals import CONTRACT
from tests.support import ROOT
from tests.support.faults import get_text

#: A scrape's samples by (name, labels).
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Recorder:
    """Every contract signal sent while connected, as (short name, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._receivers: list[tuple[str, Any]] = []

    def connect(self) -> None:
        for spec in CONTRACT:
            def receive(sender: Any, _name: str = spec.name[5:], **fields: Any) -> None:
                self.events.append((_name, fields))
            self._receivers.append((spec.name, receive))
            blinker.signal(spec.name).connect(receive)

    def disconnect(self) -> None:
        for name, receive in self._receivers:
            blinker.signal(name).disconnect(receive)
        self._receivers.clear()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.events if event == name]

    def names(self) -> list[str]:
        return [event for event, _ in self.events]


def scrape(tel: Telemetry) -> tuple[str, Series]:
    """``/metrics`` of ``tel``: the text, and its samples parsed by prometheus_client."""
    text = get_text(f"{tel.url}/metrics")
    series = {(sample.name, frozenset(sample.labels.items())): sample.value
              for family in text_string_to_metric_families(text) for sample in family.samples}
    return text, series


def value(series: Series, name: str, **labels: str) -> float | None:
    """The sample ``name{labels}`` of a :func:`scrape`, None when absent."""
    return series.get((name, frozenset(labels.items())))


def assert_none_of(secrets: Iterable[str], *texts: str) -> None:
    """No prompt, output or tool-argument text (``secrets``) is in any of ``texts``."""
    for text in texts:
        for secret in secrets:
            assert secret not in text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels}`` (exactly those labels) in a Prometheus
    text exposition; 0 when absent."""
    wanted = sorted(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.compile(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$", re.M)
    for found, value in pattern.findall(text):
        if sorted(filter(None, found.split(","))) == wanted:
            return float(value)
    return 0.0


def page_example(page: str) -> str:
    """The one runnable ```python block of ``docs/adapters/<page>.md``."""
    text = (ROOT / "docs" / "adapters" / f"{page}.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, f"docs/adapters/{page}.md has one runnable example"
    return blocks[0]


def run_example(code: str, *, drop: Callable[[str], bool] = lambda key: False,
                extra_env: Mapping[str, str] | None = None,
                cwd: Path = ROOT, timeout: float = 120) -> list[str]:
    """Run ``code`` in a fresh interpreter, as a user would, and return its output lines.

    The environment is this process's without the ``YOLO_TELEMETRY_*`` variables (the
    example must work on the default config) and without any variable ``drop`` names
    (API keys, so the example provably stays offline), plus ``extra_env``.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("YOLO_TELEMETRY_") and not drop(key)}
    env.update(extra_env or {})
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def promised_prints(code: str) -> list[str]:
    """What the example's ``print(...)  # shown`` comments say it prints, in order."""
    return re.findall(r"print\(.*?\)\s+# (.+)", code)
