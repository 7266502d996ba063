"""Run a hang-prone scenario in a child interpreter, bounded by a deadline.

A scenario that deadlocks must fail its test, not hang the suite: the child arms
``faulthandler.dump_traceback_later`` (it prints every thread's stack and exits)
and the parent kills it at the deadline too. The child prints one JSON line of
results last; :func:`run_scenario` returns it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

from tests.support import ROOT

_PRELUDE = """\
import faulthandler, json, sys
sys.path.insert(0, {root!r})
faulthandler.dump_traceback_later({deadline}, exit=True)
def report(**results):
    print(json.dumps(results), flush=True)
"""


def run_scenario(code: str, deadline_s: float = 60.0,
                 env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``code`` (which ends by calling ``report(...)``) in a fresh interpreter."""
    script = _PRELUDE.format(root=str(ROOT), deadline=deadline_s) + textwrap.dedent(code)
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    child_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=deadline_s + 15, cwd=ROOT, env=child_env)
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"scenario hung past {deadline_s} s:\n{expired.stderr}") from None
    assert done.returncode == 0, (f"scenario failed (exit {done.returncode}):\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    lines = done.stdout.strip().splitlines()
    assert lines, f"scenario reported nothing:\n{done.stderr[-3000:]}"
    return json.loads(lines[-1])
