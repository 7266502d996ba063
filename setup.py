"""Compiles the per-event modules with Cython when it can; everything else is in
pyproject.toml.

Which modules, and with which directives: ``telemetry/compiled.py``, read here as a
file (the package's dependencies are not installed at build time).
``YOLO_TELEMETRY_COMPILE``: ``auto`` (default: wheels compiled when a compiler is at
hand, pure Python otherwise; editable installs pure), ``1`` (always, or fail), ``0``
(never).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
CHOICE = os.environ.get("YOLO_TELEMETRY_COMPILE", "auto").strip().lower() or "auto"
if CHOICE not in ("auto", "1", "0"):
    sys.exit(f"setup.py: YOLO_TELEMETRY_COMPILE: expected auto, 1 or 0; found {CHOICE!r}")
REQUIRED = CHOICE == "1"


class OptionalBuildExt(build_ext):
    """``build_ext`` that leaves a module in pure Python when it cannot compile it,
    unless compiling was required; compiles on every core."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:
            if REQUIRED:
                raise
            print(f"setup.py: not compiled, pure Python instead ({error})", file=sys.stderr)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            if REQUIRED:
                raise
            print(f"setup.py: {ext.name} not compiled, pure Python instead ({error})",
                  file=sys.stderr)


#: Commands that build nothing: metadata and the sdist, which ships the sources.
NOTHING_TO_COMPILE = {"egg_info", "dist_info", "sdist"}


def extensions() -> list:
    commands = {arg for arg in sys.argv[1:] if not arg.startswith("-") and "/" not in arg}
    editable = bool(commands & {"editable_wheel", "develop"})
    if (CHOICE == "0" or (CHOICE == "auto" and editable)
            or (commands and commands <= NOTHING_TO_COMPILE)):
        return []
    plan = runpy.run_path(str(HERE / "telemetry" / "compiled.py"))
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRED:
            raise
        print("setup.py: Cython is not installed, pure Python instead", file=sys.stderr)
        return []
    sources = [str(Path(*name.split(".")).with_suffix(".py")) for name in plan["MODULES"]]
    sources += [str(Path(*name.split(".")).with_suffix(".pyx")) for name in plan["C_ONLY"]]
    try:
        return cythonize(sources, compiler_directives=plan["DIRECTIVES"],
                         build_dir="build/cython", nthreads=os.cpu_count() or 1, quiet=True)
    except Exception as error:
        if REQUIRED:
            raise
        print(f"setup.py: not translated to C, pure Python instead ({error})", file=sys.stderr)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
