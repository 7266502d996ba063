"""docs/adapters/bmad.md: its example runs as written and prints what the page says; its
tables name every reason the watcher counts and the default roles."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

from telemetry.bmad import WatcherCounts
from telemetry.bmad.roles import DEFAULT_STATES
from tests.support import ROOT

PAGE = (ROOT / "docs" / "adapters" / "bmad.md").read_text()


def test_the_example_runs_and_prints_what_the_page_says() -> None:
    [example] = re.findall(r"```python\n(.*?)```", PAGE, re.S)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("YOLO_TELEMETRY_")}
    result = subprocess.run([sys.executable, "-c", example], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    promised = re.findall(r"print\(.*?\)\s+# (.+)", example)
    assert promised == ["1 (sm -> dev)", "1 (dev)"]
    assert result.stdout.splitlines() == [line.split(" ")[0] for line in promised]


def test_the_tables_name_every_counted_reason_and_the_default_roles() -> None:
    reasons = [field.name for field in dataclasses.fields(WatcherCounts)
               if field.name not in ("polls", "reads")]
    for reason in reasons:
        assert f"| `{reason}` |" in PAGE, reason
    for state, ownership in DEFAULT_STATES.items():
        works = "yes" if ownership.works else "no"
        assert re.search(rf"^\| {state} \| {ownership.role} \| {works}\b", PAGE, re.M), state
