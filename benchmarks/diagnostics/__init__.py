"""Scripts for whoever changes the per-event path or an exporter: before/after pairs
(``paired``, ``background_cost``, ``trace_cost --compare``), where the time goes
(``hotspots``) and what profiling and OTLP cost (``profiling_overhead``,
``otlp_cost``). Measurements, not tests; not part of ``python -m benchmarks``."""
