"""The benchmark suite works: a tiny quick run produces every figure (not timed).

The quick run proves the suite runs end to end and records numeric figures; the
full run's figures are in benchmarks/results/ and benchmarks/README.md.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from benchmarks import BENCHMARKS
from benchmarks.harness import figure, interleave, paired_ratios
from tests.support import ROOT

#: Figures every run must record as numbers, by benchmark, by the start of their
#: names (the counts in them depend on the scale); tracing rows may be n/a.
REQUIRED = {
    "per_event": ["handoff_completed: ours / bare send", "reference mix: ours / bare send"],
    "naive": ["handoff_completed: naive / ours"],
    "overhead": ["metrics only: wall-time overhead",
                 "metrics only: CPU-time overhead (sending thread)",
                 "noise floor, wall time: baseline / baseline"],
    "memory": ["growth over"],
    "scrape": ["10 series: time per series", "50 series: time per series",
               "500 series: time per series", "linearity: per-series time 500 / 50",
               "50 series, 10x events / 1x events"],
    "exposition": ["10 series, text: render / generate_latest",
                   "500 series, OpenMetrics: render / generate_latest",
                   "500 series, prometheus_client path (before): render / generate_latest",
                   "full collections per 500-series render, OpenMetrics"],
    "threads": ["1 thread: events/s", "2 threads: events/s", "4 threads: events/s",
                "lost updates (all runs)"],
    "collection": ["no reader: longest send", "copy_series: longest send",
                   "copy_series: full collections", "collect: longest send",
                   "scrape: longest send", "scrape: full collections"],
    "alert_history": ["summed views: memory per series",
                      "summed views / every series: CPU per evaluation",
                      "summed views: GC-tracked objects per series"],
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--scale", "0.05", "--receivers",
         "closed", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text()), done.stdout


def _figures(doc: dict) -> dict[str, dict[str, dict]]:
    return {b["name"]: {f["name"]: f for f in b["figures"]} for b in doc["benchmarks"]}


def test_quick_run_records_every_benchmark_with_numeric_figures(quick_run) -> None:
    doc, _ = quick_run
    assert doc["mode"] == "quick"
    found = _figures(doc)
    assert list(found) == list(BENCHMARKS)
    for bench, names in REQUIRED.items():
        for prefix in names:
            matching = [f for name, f in found[bench].items() if name.startswith(prefix)]
            assert matching, (bench, prefix, list(found[bench]))
            value = matching[0]["value"]
            name = matching[0]["name"]
            assert isinstance(value, float | int) and math.isfinite(value), (bench, name, value)
    for bench in found.values():
        for fig in bench.values():
            if fig["value"] is None:  # only rows of a part that does not exist yet
                assert "not implemented" in fig["note"], fig


def test_quick_run_counts_every_event_it_sends(quick_run) -> None:
    doc, _ = quick_run
    found = _figures(doc)
    assert found["threads"]["lost updates (all runs)"]["value"] == 0
    details = {b["name"]: b["details"] for b in doc["benchmarks"]}
    per_event = details["per_event"]
    assert per_event["events_counted_by_pipeline"] == per_event["events_sent_to_pipeline"]
    kept = details["scrape"]["handoff_series_kept"]
    assert kept == {"series_10": 10, "series_50": 50, "series_500": 500,
                    "series_mid_10x_events": 50}


def test_quick_run_prints_the_table(quick_run) -> None:
    _, stdout = quick_run
    assert "benchmark" in stdout and "target" in stdout
    for name in BENCHMARKS:
        assert f"\n{name} " in stdout


def test_unknown_benchmark_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nonsense"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_figure_checks_its_target() -> None:
    assert figure("b", "f", 1.9, "x", target="<= 2.0").met is True
    assert figure("b", "f", 2.1, "x", target="<= 2.0").met is False
    assert figure("b", "f", 0.0, "events", target="== 0").met is True
    assert figure("b", "f", None, "%", target="< 2").met is False
    assert figure("b", "f", 3.0, "x").met is None


def test_interleave_rotates_and_pairs_rounds() -> None:
    calls: list[str] = []
    values = {"a": iter([1.0, 2.0, 4.0]), "b": iter([2.0, 4.0, 4.0])}

    def variant(name: str):
        def once() -> float:
            calls.append(name)
            return next(values[name])
        return once

    samples = interleave({"a": variant("a"), "b": variant("b")}, rounds=2, warmup=1)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert samples == {"a": [2.0, 4.0], "b": [4.0, 4.0]}
    assert paired_ratios(samples, "b", "a") == [2.0, 1.0]
