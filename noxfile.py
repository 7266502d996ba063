"""Framework adapter test sessions, one venv per framework (their pins may clash).

``nox -s adapters`` runs every framework's offline tests against the real backends,
``nox -s adapters_lowest`` the same on the lowest release each extra allows;
``nox -s "adapters(framework='langgraph')"`` runs one. Each session installs the
project with the dev extra and the framework's own extra (the tested version range
lives in pyproject.toml), then runs ``tests/adapters/<framework>/``. ``.ci/run``
calls it; the main ``python -m pytest`` run leaves ``tests/adapters`` to these venvs.
"""

from __future__ import annotations

import os
import re
import tomllib

import nox

# uv installs each venv in seconds where pip takes minutes (CI starts with empty caches).
nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

#: framework -> the extra that installs it (``pip install "yolo-telemetry[<extra>]"``).
FRAMEWORKS = {
    "openai_agents": "openai-agents",
    "pydantic_ai": "pydantic-ai",
    "langgraph": "langgraph",
    "agent_framework": "agent-framework",
    "google_adk": "google-adk",
    "crewai": "crewai",
}


@nox.session
@nox.parametrize("framework", [name for name in FRAMEWORKS
                               if os.path.isdir(f"tests/adapters/{name}")])
def adapters(session: nox.Session, framework: str) -> None:
    session.install("-q", "-e",
                    f".[dev,{FRAMEWORKS[framework]}]")
    session.run("python", "-m", "pytest", "-o", "addopts=-ra --strict-markers",
                f"tests/adapters/{framework}", *session.posargs)


def floors(extra: str) -> list[str]:
    """``name==version`` for each ``name>=version`` requirement of a pyproject extra."""
    with open("pyproject.toml", "rb") as handle:
        requirements = tomllib.load(handle)["project"]["optional-dependencies"][extra]
    pins = []
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*>=\s*([^,;\s]+)", requirement)
        if match:
            pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


#: Test-only pins on a framework's floor: companions its floor needs at a matching
#: release that its own requirements leave open (the tests import langgraph.prebuilt;
#: later prebuilts need a later langgraph).
FLOOR_COMPANIONS = {"langgraph": ["langgraph-prebuilt==1.0.0"]}


@nox.session
@nox.parametrize("framework", [name for name in FRAMEWORKS
                               if os.path.isdir(f"tests/adapters/{name}")])
def adapters_lowest(session: nox.Session, framework: str) -> None:
    """The same tests on the lowest framework release the extra allows: the floor
    pyproject.toml declares is a tested one."""
    session.install("-q", "-e", ".[dev]",
                    *floors(FRAMEWORKS[framework]), *FLOOR_COMPANIONS.get(framework, ()))
    session.run("python", "-m", "pytest", "-o", "addopts=-ra --strict-markers",
                f"tests/adapters/{framework}", *session.posargs)
