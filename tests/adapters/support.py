"""Shared by the frameworks' test folders: recording the signals an adapter sends,
running a story test against real backends, reading what the adapter tests scrape,
the checks every adapter's failure tests make, and running the examples of
docs/adapters/ as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blinker
import pytest
from prometheus_client.parser import text_string_to_metric_families

from telemetry import Telemetry
from telemetry.signals import CONTRACT
from tests.support import ROOT
from tests.support.backends import rotel_receiver
from tests.support.faults import get_json, get_text

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


class LookupFailed(Exception):
    """A tool's own failure (its class name is the ``error_type`` the tests expect)."""


@dataclass
class StoryRun:
    """What a story test reads: the story's own result, ``/metrics`` and ``/health``
    right after it, ``/health`` inside each tool call (``during``), and what reached
    the rotel receiver once telemetry stopped."""

    result: Any
    metrics: str
    status: int
    health: dict[str, Any]
    spans: list[dict[str, Any]]
    raw: str
    during: list[dict[str, Any]] = field(default_factory=list)

    def assert_no_secrets(self, *secrets: str) -> None:
        """No prompt, answer or tool text (``secrets``) in the metrics, the health
        document or anything rotel received."""
        for where, text in {"metrics": self.metrics, "health": str(self.health),
                            "rotel": self.raw}.items():
            for secret in secrets:
                assert secret not in text, f"{secret!r} reached {where}"


def run_story(tmp_path: Path, start_telemetry: Callable[..., Telemetry],
              story: Callable[[], Any], *, workflows: int = 1,
              tool_observers: list[Callable[[], None]] | None = None) -> StoryRun:
    """Run ``story`` with telemetry on (``/metrics`` and OTLP spans to a real rotel
    receiver), then stop telemetry and wait for ``workflows`` workflow spans.

    ``tool_observers``: the scenario's list of callbacks its tools run; ``/health`` is
    read there too, while the tool runs (:attr:`StoryRun.during`).
    """
    with rotel_receiver(tmp_path) as rotel:
        tel = start_telemetry({"exporters": {"otlp": {
            "enabled": True, "endpoint": rotel.http_endpoint, "interval_s": 3600}}})
        during: list[dict[str, Any]] = []
        if tool_observers is not None:
            tool_observers.append(lambda: during.append(get_json(f"{tel.url}/health")[1]))
        try:
            result = story()
        finally:
            if tool_observers is not None:
                tool_observers.clear()
        metrics = get_text(f"{tel.url}/metrics")
        status, health = get_json(f"{tel.url}/health")
        tel.stop()
        rotel.wait_for_spans(lambda s: s["name"].startswith("invoke_workflow"),
                             count=workflows)
        return StoryRun(result, metrics, status, health, rotel.spans(), rotel.output(),
                        during)


def metrics_text(tel: Telemetry) -> str:
    """``/metrics`` of ``tel``, as text."""
    return get_text(f"{tel.url}/metrics")


def break_adapter_path(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """Make ``module.name`` raise, as a bug in the adapter would."""
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(module, name, broken)


def assert_failure_counted(text: str, framework: str, failures: int,
                           handoff: tuple[str, str]) -> None:
    """A failing adapter path was counted (``dropped{adapter_<framework>,exception}``)
    and the rest of the mapping carried on: the story's ``handoff`` and its completed
    workflow are there."""
    assert sample(text, "yolo_telemetry_dropped_total", component=f"adapter_{framework}",
                  reason="exception") == failures
    assert sample(text, "yolo_handoffs_total", from_agent=handoff[0], to_agent=handoff[1]) == 1
    assert sample(text, "yolo_workflows_total", outcome="completed") == 1


def assert_failed_tool_run(text: str, agent: str, tool: str, error_type: str, *,
                           errors: int) -> None:
    """A tool that raised ``error_type`` failed the run: the call and its error are
    counted, the agent's errors are ``errors``, the workflow failed and no agent is left
    active; the card number of the prompt (with its dash: bare digits turn up in
    timestamps) is nowhere in the scrape."""
    assert sample(text, "yolo_tool_calls_total", agent=agent, tool=tool) == 1
    assert sample(text, "yolo_tool_errors_total", agent=agent, tool=tool,
                  error_type=error_type) == 1
    assert sample(text, "yolo_errors_total", agent=agent, error_type=error_type) == errors
    assert sample(text, "yolo_workflows_total", outcome="failed") == 1
    assert sample(text, "yolo_agents_active") == 0
    assert "4111-1111" not in text


def assert_failed_model_run(text: str, agent: str, model: str, error_type: str, *,
                            errors: int) -> None:
    """A model call that raised ``error_type`` failed the run: the LLM error is
    counted, the agent's errors are ``errors``, the workflow failed and no agent is left
    active."""
    assert sample(text, "yolo_llm_errors_total", agent=agent, model=model,
                  error_type=error_type) == 1
    assert sample(text, "yolo_errors_total", agent=agent, error_type=error_type) == errors
    assert sample(text, "yolo_workflows_total", outcome="failed") == 1
    assert sample(text, "yolo_agents_active") == 0


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
