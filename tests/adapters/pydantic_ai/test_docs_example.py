"""docs/adapters/pydantic_ai.md: its example runs as written (with the test models it
uses instead of an LLM) and prints what the page says it prints; its mapping table
names every hook the capability implements."""

from __future__ import annotations

from telemetry.adapters import pydantic_ai as adapter
from tests.adapters.support import page_example, promised_prints, run_example
from tests.support import ROOT

PAGE = (ROOT / "docs" / "adapters" / "pydantic_ai.md").read_text()


def test_the_example_runs_and_prints_what_the_page_says() -> None:
    code = page_example("pydantic_ai")
    lines = run_example(code, drop=lambda key: key.endswith("_API_KEY"))
    promised = promised_prints(code)
    assert lines[:len(promised)] == promised
    assert promised == ["Done: three sources agree.", "healthy", "1"]


def test_the_table_names_every_hook_the_capability_implements() -> None:
    hooks = sorted(name for name in vars(adapter.TelemetryCapability)
                   if name.startswith("wrap_"))
    assert hooks == ["wrap_model_request", "wrap_run", "wrap_tool_execute"]
    for hook in hooks:
        assert f"(`{hook}`)" in PAGE, hook
