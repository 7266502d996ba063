"""Which modules of this installation run compiled.

The modules an event passes through (the signal's send, the checks, the aggregator's
receiver and handlers, the cells, the tracer and the span encoder with its wire-format
pieces) are compiled to C with Cython when a wheel is built (``setup.py``), and so is
the StatsD exporter's timer writer (:mod:`exporters.statsd.fixed`, half of a flush's
CPU otherwise): the same source, compiled as it is, with Python's semantics kept
(``annotation_typing`` off, so an annotation is never a type check). Four modules
exist only compiled (:data:`C_ONLY`): ``exporters/otlp/fastpath/span_writer.pyx``
writes a batch's spans into one buffer, where a pure-Python build joins pieces per
span;
``exporters/otlp/fastpath/exchange.pyx`` sends an OTLP/HTTP request and reads the start
of its answer with one release of the GIL, where a pure-Python build calls
``sendall`` and ``recv``; ``exporters/statsd/burst.pyx`` sends a burst of StatsD
datagrams with one release of the GIL, where a pure-Python build sends them one by
one; and ``telemetry/tracing/spans/untrack.pyx`` takes a finished span out of the garbage
collector's tracking, where a pure-Python build leaves it tracked.

The objects every event touches (the cells, the pairs and bundles that hold them, the
fast paths' arguments; with tracing, the spans, the open-span table, the span builder
and the tracer's handlers) are declared as C structures by the ``.pxd`` files beside
their modules, which only the compiled build reads: compiled code would otherwise
reach their fields through CPython's generic attribute lookup, slower than the
interpreter's own. Under callgrind that takes the main thread's instructions per event
of the reference workflow from 16,300 (pure Python) to 8,600 with metrics only, and
from 26,900 to 20,700 traced at 1.0 (compiled without and with the tracer's
declarations). Where no compiler is at hand the build falls back to the pure-Python
modules, which behave the same.

``YOLO_TELEMETRY_COMPILE`` picks, at build time: ``auto`` (the default: wheels are
compiled when they can be, editable installs are not, so an edited module takes effect
at once), ``1`` (always, in place for an editable install; a failure fails the build)
or ``0`` (never). Imports nothing but the standard library: ``setup.py`` reads
:data:`MODULES` from this file before the package can be imported.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import find_spec

#: The modules compiled when the build compiles: the per-event path, metrics and traces,
#: and the StatsD timer writer.
MODULES: tuple[str, ...] = (
    "telemetry.signals",
    "telemetry.validation",
    "telemetry.aggregation.aggregator",
    "telemetry.aggregation.followers",
    "telemetry.aggregation.receiver",
    "telemetry.aggregation.reentry",
    "telemetry.aggregation.series",
    "telemetry.aggregation.state",
    "telemetry.aggregation.handlers.calls",
    "telemetry.aggregation.handlers.operations",
    "telemetry.aggregation.handlers.table",
    "telemetry.tracing.live",
    "telemetry.tracing.tracer",
    "telemetry.tracing.spans.attributes",
    "telemetry.tracing.spans.builder",
    "telemetry.tracing.spans.record",
    "telemetry.tracing.spans.table",
    "telemetry.tracing.handlers.calls",
    "telemetry.tracing.handlers.events",
    "telemetry.tracing.handlers.handoffs",
    "telemetry.tracing.handlers.live_signals",
    "telemetry.tracing.handlers.state",
    "exporters.otlp.batch",
    "exporters.otlp.fastpath.span_encoding",
    "exporters.otlp.fastpath.wire",
    "exporters.statsd.fixed",
)

#: Modules that exist only compiled (a ``.pyx``): work a pure-Python build does
#: another way, with Python's own calls.
C_ONLY: tuple[str, ...] = (
    "exporters.otlp.fastpath.exchange",
    "exporters.otlp.fastpath.span_writer",
    "exporters.statsd.burst",
    "telemetry.tracing.spans.untrack",
)

#: The Cython directives every module is compiled with: Python's semantics, kept.
DIRECTIVES: dict[str, object] = {
    "language_level": 3,
    # Functions stay Python functions to whoever inspects or binds them (methods,
    # signatures, attributes set on them).
    "binding": True,
    # An annotation documents; it never turns into a type check or a C type.
    "annotation_typing": False,
}


def is_compiled(module_name: str) -> bool:
    """Whether ``module_name`` is (or will be) loaded from an extension module. Finds
    the module without running it: the tracing modules need the ``otlp`` extra."""
    spec = find_spec(module_name)
    return bool(spec and spec.origin and spec.origin.endswith(tuple(EXTENSION_SUFFIXES)))


def compiled_modules() -> dict[str, bool]:
    """Each module of :data:`MODULES` and :data:`C_ONLY`, and whether it runs
    compiled here."""
    return {name: is_compiled(name) for name in (*MODULES, *C_ONLY)}


def summary() -> str:
    """One line for ``--version`` and benchmark reports: how much runs compiled."""
    states = compiled_modules()
    compiled = sum(states.values())
    if compiled == len(states):
        return "per-event path compiled"
    if compiled == 0:
        return "pure Python"
    return f"per-event path partly compiled ({compiled} of {len(states)} modules)"
