"""docs/adapters/google_adk.md: its example runs as written (with the scripted model it
uses instead of Gemini) and prints what the page says it prints; its mapping table
names every callback the plugin implements."""

from __future__ import annotations

from telemetry.adapters import google_adk as adapter
from tests.adapters.support import page_example, promised_prints, run_example
from tests.support import ROOT

PAGE = (ROOT / "docs" / "adapters" / "google_adk.md").read_text()


def test_the_example_runs_and_prints_what_the_page_says() -> None:
    code = page_example("google_adk")
    lines = run_example(code, timeout=240,
                        drop=lambda key: key.endswith("_API_KEY") or key.startswith("GOOGLE_"),
                        extra_env={"GOOGLE_GENAI_USE_ENTERPRISE": "false"})
    promised = promised_prints(code)
    assert lines[:len(promised)] == promised
    assert promised == ["Your order has shipped.", "healthy", "1"]


def test_the_table_names_every_callback_the_plugin_implements() -> None:
    callbacks = sorted(name for name in vars(adapter.TelemetryPlugin)
                       if name.endswith("_callback"))
    assert len(callbacks) == 13
    for callback in callbacks:
        assert f"`{callback}`" in PAGE, callback
