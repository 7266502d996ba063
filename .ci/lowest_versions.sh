#!/usr/bin/env bash
# Installs the LOWEST versions pyproject.toml allows for every direct dependency (uv's
# `--resolution lowest-direct`; what those need in turn resolves as usual) into a
# fresh venv, then runs the unit tests against them. A floor that fails here is
# raised in pyproject.toml, not skipped.
#
# Run by .ci/run with the project's venv active (it needs `python` with pip); alone:
#   . .venv/bin/activate && bash .ci/lowest_versions.sh
set -euo pipefail

cd "$(dirname "$0")/.."
venv="$(mktemp -d)/lowest"
trap 'rm -rf "$(dirname "$venv")"' EXIT

python -m pip install --quiet --disable-pip-version-check "uv>=0.5"
# uv must use this machine's Python rather than download one (the network reaches
# only the package registries).
export UV_PYTHON_DOWNLOADS=never
python -m uv venv --quiet --python "$(command -v python3)" "$venv"
# --python names the target venv: `python -m uv` would otherwise install into the venv
# of the python running it.
python -m uv pip install --quiet --python "$venv/bin/python" --resolution lowest-direct \
    -e ".[dev]"

# The versions under test, for the log.
python -m uv pip freeze --python "$venv/bin/python" | grep -i -E \
    '^(blinker|prometheus-client|psutil|pydantic|pyyaml|opentelemetry-(api|sdk|exporter-otlp|exporter-http-transport)|statsd|pyinstrument|grafana-foundation-sdk|pytest|hypothesis)=' \
    | sed 's/^/  - /'

"$venv/bin/python" -m pytest tests/unit -q -p no:cacheprovider
