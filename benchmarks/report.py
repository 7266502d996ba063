"""Printing and recording results: the console table, the JSON document, Markdown.

``python -m benchmarks.report PATH`` renders a recorded JSON file as the Markdown
table the README quotes.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmarks.harness import Figure, Result

RESULTS_DIR = Path(__file__).parent / "results"


def _format_value(value: float | None, unit: str, noise: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    if unit in ("events/s", "events") or magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif unit == "%" or magnitude < 1:
        text = f"{value:.3f}" if unit != "%" else f"{value:.2f}"
    else:
        text = f"{value:.2f}"
    if noise is not None and math.isfinite(noise) and noise > 0:
        spread = f"{noise:,.0f}" if unit == "events/s" else (
            f"{noise:.2f}" if noise >= 0.01 else f"{noise:.3f}")
        text += f" ± {spread}"
    return f"{text} {unit}" if unit not in ("x",) else f"{text}x"


def _met(figure: dict[str, Any]) -> str:
    if figure["target"] is None:
        return "-"
    return "yes" if figure["met"] else "NO"


def rows(document: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    found = []
    for bench in document["benchmarks"]:
        for fig in bench["figures"]:
            value = _format_value(fig["value"], fig["unit"], fig["noise"])
            if fig["note"]:
                value += f" ({fig['note']})"
            found.append((bench["name"], fig["name"], value, fig["target"] or "-", _met(fig)))
    return found


def console_table(document: dict[str, Any]) -> str:
    header = ("benchmark", "figure", "value", "target", "met")
    table = [header, *rows(document)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for number, row in enumerate(table):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(document: dict[str, Any]) -> str:
    lines = ["| benchmark | figure | value | target | met |", "|---|---|---|---|---|"]
    for row in rows(document):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict[str, str]:
    found = {}
    for name in ("blinker", "prometheus-client", "opentelemetry-sdk", "statsd", "psutil"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def document(results: list[Result], *, quick: bool, scale: float, environment: dict[str, Any],
             started_utc: str, seconds: float) -> dict[str, Any]:
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "suite": "yolo-telemetry benchmarks",
        "mode": "quick" if quick else "full",
        "scale": scale,
        "started_utc": started_utc,
        "finished_utc": utc_now(),
        "seconds": round(seconds, 1),
        "machine": {"python": sys.version.split()[0],
                    "implementation": platform.python_implementation(),
                    "platform": platform.platform(), "cpu": _cpu_model(),
                    "cpus": os.cpu_count(), "packages": _versions()},
        "code": {"commit": _git("rev-parse", "HEAD"),
                 "branch": _git("rev-parse", "--abbrev-ref", "HEAD"), "modified": bool(dirty)},
        "environment": environment,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "benchmarks": [result.as_dict() for result in results],
        "all_targets_met": all(fig.met for result in results for fig in result.figures
                               if fig.target is not None),
    }


def write(document_: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document_, indent=2, sort_keys=False) + "\n")


def failed_result(name: str, title: str, error: BaseException) -> Result:
    """What a benchmark that crashed leaves in the table: its error, no figures met."""
    text = f"{type(error).__name__}: {error}"[:300]
    return Result(name, title, [Figure(name, "error", None, "", "runs", False, None, text)],
                  {"error": text})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else RESULTS_DIR / "latest.json"
    print(markdown_table(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
