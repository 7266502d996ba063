"""The compiled per-event path (setup.py, telemetry/compiled.py): what is listed exists,
a build is compiled whole or not at all, and never older than its source."""

from __future__ import annotations

import os
import runpy
from importlib.util import find_spec
from pathlib import Path

import pytest

from telemetry import compiled

ROOT = Path(__file__).resolve().parents[3]


def _source(name: str) -> Path:
    suffix = ".pyx" if name in compiled.C_ONLY else ".py"
    return ROOT.joinpath(*name.split(".")).with_suffix(suffix)


@pytest.mark.parametrize("name", compiled.MODULES + compiled.C_ONLY)
def test_every_module_listed_for_compiling_has_its_source(name: str) -> None:
    assert _source(name).is_file(), f"{name} is listed in telemetry/compiled.py"


def test_a_module_that_exists_only_compiled_is_shipped_as_source() -> None:
    """The sdist (and so a wheel built from it) carries the ``.pyx``."""
    text = (ROOT / "pyproject.toml").read_text()
    assert '"*.pyx"' in text
    assert compiled.C_ONLY and not set(compiled.C_ONLY) & set(compiled.MODULES)


def test_every_declaration_file_belongs_to_a_listed_module() -> None:
    """A ``.pxd`` beside a module types its classes and fast paths in a compiled build;
    one beside a module that is not compiled would be dead, and silently so."""
    declared = {str(path.relative_to(ROOT).with_suffix("")).replace(os.sep, ".")
                for package in ("telemetry", "exporters")
                for path in (ROOT / package).rglob("*.pxd")}
    assert declared, "the cells are declared in telemetry/aggregation/series.pxd"
    assert declared <= set(compiled.MODULES)


def test_declared_classes_are_c_structures_when_compiled() -> None:
    """Compiled, the cells and the bundles that hold them, the spans, the open-span
    table, the span builder and the tracer's handlers are extension types (their fields
    typed by the ``.pxd``), not Python classes: a build that lost a declaration runs,
    only slower, and fails here."""
    from exporters.otlp.fastpath.span_encoding import SpanEncoder
    from telemetry.aggregation.handlers.calls import LlmCells, ToolCells
    from telemetry.aggregation.series import CounterCell, ExemplarSource, HistogramCell
    from telemetry.aggregation.state import CellPair
    from telemetry.tracing.handlers.state import TracerState
    from telemetry.tracing.spans.builder import SpanBuilder
    from telemetry.tracing.spans.record import SpanRecord, SpanStub
    from telemetry.tracing.spans.table import OpenSpan, OpenSpans
    from telemetry.tracing.tracer import SignalTracer

    heap_type = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement
    classes = (CounterCell, HistogramCell, ExemplarSource, CellPair, LlmCells, ToolCells,
               SpanEncoder, SpanStub, SpanRecord, OpenSpan, OpenSpans, SpanBuilder,
               TracerState, SignalTracer)
    is_python_class = {cls.__name__: bool(cls.__flags__ & heap_type) for cls in classes}
    states = set(compiled.compiled_modules().values())
    if states == {True}:
        assert not any(is_python_class.values()), is_python_class
    elif states == {False}:
        assert all(is_python_class.values()), is_python_class


def test_setup_compiles_the_listed_modules_with_pythons_semantics() -> None:
    plan = runpy.run_path(str(ROOT / "telemetry" / "compiled.py"))
    assert plan["MODULES"] == compiled.MODULES
    assert plan["C_ONLY"] == compiled.C_ONLY
    assert plan["DIRECTIVES"]["annotation_typing"] is False
    assert plan["DIRECTIVES"]["binding"] is True
    assert "compiled.py" in (ROOT / "setup.py").read_text()


def test_the_per_event_path_is_compiled_whole_or_not_at_all() -> None:
    """A module left pure beside compiled ones is a failed or partial build."""
    states = compiled.compiled_modules()
    assert len(set(states.values())) == 1, states
    expected = "per-event path compiled" if all(states.values()) else "pure Python"
    assert compiled.summary() == expected


def test_compiled_when_the_build_was_told_to_compile() -> None:
    """CI installs with YOLO_TELEMETRY_COMPILE=1 and runs the suite with it set: a
    build that fell back to pure Python fails here, not in a benchmark."""
    if os.environ.get("YOLO_TELEMETRY_COMPILE", "auto") != "1":
        assert os.environ.get("YOLO_TELEMETRY_COMPILE", "auto") in ("auto", "0")
        return
    not_compiled = [name for name, done in compiled.compiled_modules().items() if not done]
    assert not_compiled == []


@pytest.mark.parametrize("name", compiled.MODULES + compiled.C_ONLY)
def test_a_compiled_module_is_not_older_than_its_source(name: str) -> None:
    """An in-place compiled install keeps running the old code of a module edited since:
    reinstall (``YOLO_TELEMETRY_COMPILE=1 pip install -e .``) or delete the ``.so``."""
    spec = find_spec(name)
    if spec is None and name in compiled.C_ONLY:
        return  # a pure-Python build: the module does not exist
    assert spec is not None and spec.origin
    origin = Path(spec.origin)
    if origin.suffix == ".py":
        return  # pure Python: the source is what runs
    source = _source(name)
    if origin.parent == source.parent:  # compiled in place, beside its source
        assert origin.stat().st_mtime >= source.stat().st_mtime, (
            f"{origin.name} is older than {source.name}: rebuild")
