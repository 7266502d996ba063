"""docs/operations.md names every drop reason the code counts, so the table of drop
policies cannot fall behind the code."""

from __future__ import annotations

import re

from tests.support import ROOT

DOC = (ROOT / "docs" / "operations.md").read_text()


def counted_drops() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    sources = [*ROOT.joinpath("telemetry").rglob("*.py"), *ROOT.joinpath("exporters").rglob("*.py")]
    for path in sources:
        text = path.read_text()
        constant = re.search(r'^COMPONENT = "(\w+)"', text, re.M)
        for component, reason in re.findall(r'count_dropped\(\s*(COMPONENT|"\w+"),\s*"(\w+)"',
                                            text):
            name = constant.group(1) if component == "COMPONENT" and constant else component
            found.add((name.strip('"'), reason))
    span_table = (ROOT / "telemetry" / "tracing" / "spans" / "table.py").read_text()
    tracing = (ROOT / "telemetry" / "tracing" / "tracer.py").read_text()
    for reason in re.findall(r'end_unfinished\([^)]*"(\w+)"\)', span_table) + re.findall(
            r'end_all\("(\w+)"\)', tracing):
        found.add(("tracer", reason))
    return found


def test_every_drop_reason_is_documented() -> None:
    drops = counted_drops()
    assert len(drops) >= 12  # the scan found the code
    missing = [f"dropped{{{c},{r}}}" for c, r in sorted(drops) if f"dropped{{{c},{r}}}" not in DOC]
    assert not missing, f"docs/operations.md does not describe {missing}"
