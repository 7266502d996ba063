"""Which tracer provider other instrumentation's spans go through.

Telemetry sets the current OpenTelemetry context while its spans are open
(:mod:`telemetry.tracing.live`), so spans that other instrumentation starts nest
under them. Those spans are made by the process's *global* tracer provider. With
``tracing.global_provider`` on (the default):

* an application that set an SDK ``TracerProvider`` of its own before telemetry
  started keeps it, and telemetry makes its spans with it too (its sampler,
  resource, span processors and exporters): one pipeline for every span;
* otherwise telemetry's provider becomes the global one, through
  :class:`SharedTracerProvider`, so the other spans are exported with telemetry's
  (same sampler, resource, batch queue and OTLP endpoint).

OpenTelemetry lets the global provider be set once per process. The shared
provider stays global and follows the telemetry instance running now: tracers
handed out before, cached by instrumentation, start their spans with the provider
of the instance started last, and make non-recording spans while none runs.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider


class SharedTracerProvider(trace.TracerProvider):
    """The global provider telemetry installs: a stand-in for its current provider."""

    def __init__(self) -> None:
        self.target: SdkTracerProvider | None = None

    def get_tracer(self, instrumenting_module_name: str,
                   instrumenting_library_version: str | None = None,
                   schema_url: str | None = None, attributes: Any = None) -> trace.Tracer:
        return SharedTracer(self, (instrumenting_module_name, instrumenting_library_version,
                                   schema_url, attributes))


class SharedTracer(trace.Tracer):
    """A tracer of the current target provider, looked up again when the target changes."""

    def __init__(self, shared: SharedTracerProvider, scope: tuple) -> None:
        self._shared = shared
        self._scope = scope
        self._for: Any = None
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        target = self._shared.target
        if target is not self._for:
            self._tracer = (target.get_tracer(*self._scope) if target is not None
                            else trace.NoOpTracer())
            self._for = target
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:  # type: ignore[override]
        return self._current().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self._current().start_as_current_span(*args, **kwargs)


_lock = threading.Lock()


def application_provider() -> SdkTracerProvider | None:
    """The SDK provider the application made global, if it did (not telemetry's)."""
    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, SdkTracerProvider) else None


def share(provider: SdkTracerProvider) -> bool:
    """Make ``provider`` serve the global tracers when the application set none;
    False when the application's own global provider stays in place."""
    with _lock:
        current = trace.get_tracer_provider()
        if isinstance(current, trace.ProxyTracerProvider):
            current = SharedTracerProvider()
            trace.set_tracer_provider(current)
            current = trace.get_tracer_provider()  # another thread may have set one first
        if not isinstance(current, SharedTracerProvider):
            return False
        current.target = provider
        return True


def unshare(provider: SdkTracerProvider) -> None:
    """``provider`` is shut down: global tracers stop using it (if they still do)."""
    with _lock:
        current = trace.get_tracer_provider()
        if isinstance(current, SharedTracerProvider) and current.target is provider:
            current.target = None
