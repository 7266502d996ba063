"""The yolo-telemetry performance suite: ``python -m benchmarks [--quick]``.

Every figure is a ratio (or a difference) against a baseline measured in the same
run, interleaved and repeated, because shared machines are noisy. See README.md in
this folder for what each figure means and the latest full run.
"""

from __future__ import annotations

#: Benchmark names, in run order; each is a module of this package with
#: ``NAME``, ``TITLE`` and ``run(ctx) -> Result``.
BENCHMARKS: tuple[str, ...] = ("per_event", "naive", "overhead", "memory", "scrape", "exposition",
                               "threads", "collection", "alert_history")
