#!/usr/bin/env bash
# Runs the OTLP tests (unit and against rotel) with the LOWEST OpenTelemetry release
# pyproject.toml's otlp extra allows, in a venv of its own; the project's venv has the
# newest allowed, so CI covers both ends of the declared SDK range. At the floor (1.44)
# the OTLP/HTTP exporters fall back to the SDK's own export (exporters/otlp/fastpath/
# sdk_path.py): these tests check that the fallback sends everything and says so. A failure here
# means the floor in pyproject.toml is wrong: raise it, do not skip.
#
# Run by .ci/run with the project's venv active (it needs `python` with pip); alone:
#   . .venv/bin/activate && bash .ci/otlp_sdk_floor.sh
set -euo pipefail

cd "$(dirname "$0")/.."
venv="$(mktemp -d)/otlp-floor"
trap 'rm -rf "$(dirname "$venv")"' EXIT

python -m pip install --quiet --disable-pip-version-check "uv>=0.5"
export UV_PYTHON_DOWNLOADS=never
python -m uv venv --quiet --python "$(command -v python3)" "$venv"
# The floors of the otlp extra (and of the instrumentation the tests use, which goes
# with them): pyproject.toml is read, so this script never lags behind it. Resolved
# together with the project in one install, so nothing of a newer SDK stays behind
# (1.45's exporter-http-transport and exporter-otlp-common would).
floors=$(python - <<'PY'
import re
import tomllib

extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
for requirement in extras["otlp"] + extras["dev"]:
    match = re.match(r"(opentelemetry-[a-z-]+)>=([^,]+)", requirement)
    if match:
        print(f"{match[1]}=={match[2]}")
PY
)
# shellcheck disable=SC2086
python -m uv pip install --quiet --python "$venv/bin/python" -e ".[dev]" $floors

python -m uv pip freeze --python "$venv/bin/python" | grep -i -E '^opentelemetry-' \
    | sed 's/^/  - /'

YOLO_TELEMETRY_REQUIRE_BACKENDS=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    tests/unit/exporters/otlp tests/unit/tracing tests/unit/config/test_otel_environment.py \
    tests/unit/packaging/test_pinned_internals.py tests/unit/packaging/test_pinned_http_client.py \
    tests/integration/otlp \
    tests/integration/prometheus/test_exemplars.py
