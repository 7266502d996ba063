"""The example of docs/adapters/langgraph.md runs as written (in a fresh interpreter, as
a user would run it) and shows what the page says it shows."""

from __future__ import annotations

from pathlib import Path

from tests.adapters.support import page_example, run_example


def test_the_docs_example_runs(tmp_path: Path) -> None:
    lines = run_example(page_example("langgraph"), cwd=tmp_path,
                        extra_env={"LANGSMITH_TRACING": "false",
                                   "LANGCHAIN_TRACING_V2": "false"})
    assert lines[:3] == ["mode while waiting: paused", "mode after resume: active",
                         "handoffs: 3 state saves: 6"]
    assert lines[3].startswith("metrics at http://127.0.0.1:")
