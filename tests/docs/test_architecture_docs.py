"""docs/ARCHITECTURE.md names every module, layer and thread there is, and nothing else."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.support import ROOT

DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
PACKAGES = ("telemetry", "exporters")

#: A path under one of the packages, in backticks: a module (``.py``) or a package (``/``).
_PATH = re.compile(r"`((?:telemetry|exporters)/[\w/]*?(?:\.py|/))`")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.M | re.S)
    assert match, f"no section {title!r}"
    return match.group(1)


def _first_cells(section: str) -> list[str]:
    """The first cell of every row of the section's tables, header rows left out."""
    cells = [re.split(r"(?<!\\)\|", line)[1].strip() for line in section.splitlines()
             if line.startswith("| ")]
    return [cell for cell in cells if cell.startswith("`")]


def modules() -> set[str]:
    """Every module of the two packages, as a path from the repository root."""
    return {path.relative_to(ROOT).as_posix()
            for package in PACKAGES for path in (ROOT / package).rglob("*.py")
            if "__pycache__" not in path.parts}


def mentioned() -> set[str]:
    return set(_PATH.findall(DOC))


def test_every_module_is_mentioned() -> None:
    named = mentioned()
    missing = sorted(
        module for module in modules()
        if module not in named
        and not (module.endswith("/__init__.py")
                 and module.removesuffix("__init__.py") in named))
    assert missing == [], "add a line to docs/ARCHITECTURE.md for each"


def test_every_mentioned_module_exists() -> None:
    gone = sorted(path for path in mentioned()
                  if not (ROOT / path).is_file()
                  and not (ROOT / path / "__init__.py").is_file())
    assert gone == [], "docs/ARCHITECTURE.md names modules that do not exist"


def test_the_path_pattern_finds_modules_and_packages() -> None:
    text = "`telemetry/signals.py`, `exporters/otlp/`, `telemetry.runtime`, `config/x.yaml`"
    assert set(_PATH.findall(text)) == {"telemetry/signals.py", "exporters/otlp/"}


def test_the_layers_are_the_import_contract_top_down() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [contract] = [c for c in pyproject["tool"]["importlinter"]["contracts"]
                  if c["type"] == "layers"]
    expected = [[name.strip() for name in layer.split("|")]
                for layer in reversed(contract["layers"])]
    documented = [re.findall(r"`([\w.]+)`", cell) for cell in _first_cells(_section("Layers"))]
    assert documented == expected


def _thread_names_in_code() -> set[str]:
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            for start in re.finditer(r"threading\.Thread\(", text):
                call = text[start.end():start.end() + 200]
                names.update(re.findall(r'\bname="([\w-]+)"', call)[:1])
            names.update(re.findall(r'PeriodicWorker\(\s*"([\w-]+)"', text))
    return names


def test_every_named_thread_is_in_the_thread_table() -> None:
    in_code = _thread_names_in_code()
    assert {"telemetry-http", "otlp-metrics", "yolo-span-export"} <= in_code  # the finder works
    documented = {re.sub(r"`([\w-]+)`.*", r"\1", cell)
                  for cell in _first_cells(_section("Threads"))}
    assert in_code == documented


def test_the_shutdown_section_points_to_operations() -> None:
    section = _section("Re-entrancy, interrupts and shutdown")
    assert "operations.md" in section
    assert Path(ROOT / "docs" / "operations.md").is_file()
