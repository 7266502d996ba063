"""docs/adapters/openai_agents.md: its example runs as written (with the scripted model
it uses instead of an LLM) and prints what the page says it prints; its mapping table
names every span type the processor handles."""

from __future__ import annotations

from telemetry.adapters import openai_agents as adapter
from tests.adapters.support import page_example, promised_prints, run_example
from tests.support import ROOT

PAGE = (ROOT / "docs" / "adapters" / "openai_agents.md").read_text()


def test_the_example_runs_and_prints_what_the_page_says() -> None:
    code = page_example("openai_agents")
    lines = run_example(code, drop=lambda key: key.startswith("OPENAI_"))
    promised = promised_prints(code)
    assert lines[:len(promised)] == promised
    assert promised == ["Sunny in Paris.", "healthy", "1"]


def test_the_table_names_every_span_type_the_processor_handles() -> None:
    names = {"agent": "AgentSpanData", "turn": "TurnSpanData", "task": None,
             "function": "FunctionSpanData", "generation": "GenerationSpanData",
             "response": "ResponseSpanData", "handoff": "HandoffSpanData",
             "guardrail": "GuardrailSpanData"}
    handled = adapter.TelemetryProcessor()._enders
    assert set(handled) == set(names)
    for kind, name in names.items():
        if name is not None:  # task spans only carry the run's failure
            assert f"`{name}`" in PAGE, kind
