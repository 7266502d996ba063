"""The import graph: layered as pyproject.toml's import-linter contract says, and acyclic.

``lint-imports`` (run by .ci/run) checks the layers; this test also finds cycles inside
a layer, which a layers contract cannot see.
"""

from __future__ import annotations

import subprocess
import sys

import grimp

from tests.support import ROOT


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_there_is_no_import_cycle() -> None:
    graph = grimp.build_graph("telemetry", "exporters", exclude_type_checking_imports=True)
    # A package's __init__ re-exporting its entry module is not a cycle of code.
    for package in ("exporters.otlp", "exporters.statsd", "telemetry.aggregation",
                    "telemetry.profiling", "telemetry"):
        for imported in list(graph.find_modules_directly_imported_by(package)):
            graph.remove_import(importer=package, imported=imported)
    assert _cycles(graph) == []


#: Imports each module named on the command line as the first of the two packages, in
#: one interpreter (the packages' modules are forgotten before each), and prints each
#: one that fails.
_IMPORT_EACH_FIRST = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("telemetry", "exporters")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        print(f"{name}: {type(error).__name__}: {error}")
"""


def _import_first(modules: list[str]) -> list[str]:
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH_FIRST, *modules], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


#: Adapter modules import their framework, which only that framework's nox venv has
#: (noxfile.py); each one's own tests import it there.
_SHARED_ADAPTER_MODULES = {"telemetry.adapters", "telemetry.adapters.base"}


def _all_modules() -> list[str]:
    graph = grimp.build_graph("telemetry", "exporters")
    return sorted(module for module in graph.modules if module != "telemetry.__main__"
                  and (not module.startswith("telemetry.adapters")
                       or module in _SHARED_ADAPTER_MODULES))


def _framework_absent(failure: str) -> bool:
    """Whether ``failure`` is an adapter module missing its agent framework: only the
    framework's own venv has it (noxfile.py), where the adapter's tests import it."""
    module, _, error = failure.partition(": ")
    missing = error.removeprefix("ModuleNotFoundError: No module named ")
    return (module.startswith("telemetry.adapters.") and missing != error
            and missing.strip("'").split(".")[0] not in ("telemetry", "exporters"))


#: Modules built on an SDK part that only newer releases in the otlp extra's range have,
#: imported only when it is there (exporters/otlp/fastpath/plain_http.py), and the part.
_SDK_GATED = {"exporters.otlp.fastpath.span_transport": "'opentelemetry.exporter.http'"}


def _sdk_part_absent(failure: str) -> bool:
    """Whether ``failure`` is such a module on an SDK without its part (1.44)."""
    module, _, error = failure.partition(": ")
    return (module in _SDK_GATED
            and error == f"ModuleNotFoundError: No module named {_SDK_GATED[module]}")


def test_every_module_can_be_the_first_one_imported() -> None:
    # What a plugin module (``from exporters import Exporter``) or a script does.
    failures = _import_first(_all_modules())
    assert [failure for failure in failures
            if not _framework_absent(failure) and not _sdk_part_absent(failure)] == []


def test_only_a_missing_framework_excuses_an_adapter() -> None:
    assert _framework_absent("telemetry.adapters.langgraph: ModuleNotFoundError: "
                             "No module named 'langchain_core'")
    assert not _framework_absent("telemetry.adapters.langgraph: ModuleNotFoundError: "
                                 "No module named 'telemetry.nothing'")
    assert not _framework_absent("telemetry.adapters.langgraph: ImportError: cannot import "
                                 "name 'x' from 'langgraph'")
    assert not _framework_absent("telemetry.runtime: ModuleNotFoundError: No module named 'y'")


def test_only_the_missing_sdk_part_excuses_a_gated_module() -> None:
    assert _sdk_part_absent("exporters.otlp.fastpath.span_transport: ModuleNotFoundError: "
                            "No module named 'opentelemetry.exporter.http'")
    assert not _sdk_part_absent("exporters.otlp.fastpath.span_transport: "
                                "ModuleNotFoundError: No module named 'h12'")
    assert not _sdk_part_absent("exporters.otlp.fastpath.span_http: ModuleNotFoundError: "
                                "No module named 'opentelemetry.exporter.http'")


def test_the_first_import_check_reports_a_failing_module() -> None:
    assert _import_first(["telemetry.signals", "telemetry.no_such_module"]) == [
        "telemetry.no_such_module: ModuleNotFoundError: No module named "
        "'telemetry.no_such_module'"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]
