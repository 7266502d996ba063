"""The example of docs/adapters/crewai.md runs as written (in a fresh interpreter, as a
user would run it: it switches CrewAI's own telemetry off itself) and shows what the
page says it shows."""

from __future__ import annotations

from pathlib import Path

from tests.adapters.support import page_example, run_example


def test_the_docs_example_runs(tmp_path: Path) -> None:
    # CrewAI keeps user data under the home directory.
    output = run_example(page_example("crewai"), cwd=tmp_path, timeout=180,
                         drop=lambda name: name.startswith("CREWAI_"),
                         extra_env={"HOME": str(tmp_path)})
    lines = [line for line in output if line.startswith(("handoffs", "metrics"))]
    assert lines[0] == "handoffs: 1 workflows: 1"
    assert lines[1].startswith("metrics at http://127.0.0.1:")
