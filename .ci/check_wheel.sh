#!/usr/bin/env bash
# Builds the wheel and the sdist, checks both hold every file of the packages, then
# installs the WHEEL into a fresh venv and runs the command line from a directory
# outside the checkout, as a user who ran `pip install yolo-telemetry` would: version,
# check-config, every render, and the demo with a scrape of /metrics. Any error fails.
#
# Run by .ci/run with the project's venv active (it needs `python` with pip); alone:
#   . .venv/bin/activate && bash .ci/check_wheel.sh
set -euo pipefail

cd "$(dirname "$0")/.."
checkout="$PWD"
work="$(mktemp -d)"
demo_pid=""
cleanup() {
    if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
        kill "$demo_pid"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

say() { printf '  - %s\n' "$*"; }

# --- Build ------------------------------------------------------------------------------
# From a copy of the files git tracks (as they are in the working tree), as in a fresh
# clone: a left-over *.egg-info/SOURCES.txt in the checkout would otherwise put files
# into the sdist that the package configuration no longer finds.
mkdir "$work/src"
git ls-files -z | tar --null --files-from=- -cf - | tar -xf - -C "$work/src"
# `build` makes the sdist, then the wheel from that sdist, each in an isolated env
# with the build requirements of pyproject.toml (setuptools and Cython, from PyPI).
python -m pip install --quiet --disable-pip-version-check "build>=1.2"
python -m build --outdir "$work/dist" "$work/src" >"$work/build.log" 2>&1 || {
    cat "$work/build.log"; exit 1; }
wheel=$(echo "$work"/dist/*.whl)
sdist=$(echo "$work"/dist/*.tar.gz)
say "built $(basename "$wheel") and $(basename "$sdist")"

# --- Contents ---------------------------------------------------------------------------
# Every file git tracks under the two packages (modules of every subpackage, the
# embedded default config, py.typed) must be in both, and so must the LICENSE.
git ls-files telemetry exporters >"$work/tracked.txt"
python - "$wheel" "$sdist" "$work/tracked.txt" <<'EOF'
import sys
import tarfile
import zipfile

wheel, sdist, tracked = sys.argv[1:]
expected = set(open(tracked, encoding="utf-8").read().split())
with zipfile.ZipFile(wheel) as archive:
    in_wheel = set(archive.namelist())
with tarfile.open(sdist) as archive:
    # sdist members are "<name>-<version>/<path>"
    in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}

problems = [f"wheel lacks {path}" for path in sorted(expected - in_wheel)]
problems += [f"sdist lacks {path}" for path in sorted(expected - in_sdist)]
if not any(name.endswith(".dist-info/licenses/LICENSE") for name in in_wheel):
    problems.append("wheel lacks the LICENSE (dist-info/licenses/LICENSE)")
if "LICENSE" not in in_sdist:
    problems.append("sdist lacks LICENSE")
for problem in problems:
    print(f"check_wheel: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
say "wheel and sdist hold all $(wc -l <"$work/tracked.txt") files under telemetry/ and exporters/, and the LICENSE"

# --- Install the wheel, away from the checkout ------------------------------------------
# From a temporary directory, with no PYTHONPATH, `import telemetry` can only find
# the installed wheel; the check below proves it.
python3 -m venv "$work/venv"
cd "$work"
unset PYTHONPATH
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"
location=$("$work/venv/bin/python" -c 'import telemetry; print(telemetry.__file__)')
case "$location" in
    "$work/venv/"*) say "telemetry imported from $location" ;;
    *) echo "check_wheel: telemetry imported from $location, not the wheel" >&2; exit 1 ;;
esac
cli="$work/venv/bin/yolo-telemetry"

# --- The command line -------------------------------------------------------------------
# Built with YOLO_TELEMETRY_COMPILE=1 (as .ci/run does), the wheel runs its per-event
# path compiled (setup.py): a wheel that fell back to pure Python fails here.
version=$("$cli" --version)
say "yolo-telemetry --version: $version"
if [ "${YOLO_TELEMETRY_COMPILE:-auto}" = 1 ]; then
    case "$version" in
        *"per-event path compiled"*) ;;
        *) echo "check_wheel: the wheel's per-event path is not compiled" >&2; exit 1 ;;
    esac
fi
"$cli" check-config "$checkout/config/telemetry.yaml"
for what in alerts metrics alert-table; do
    "$cli" render "$what" -o "$work/render-$what.txt"
    [ -s "$work/render-$what.txt" ] || { echo "check_wheel: render $what wrote nothing" >&2; exit 1; }
done
say "render alerts, metrics and alert-table wrote their files"

# `top` needs the top extra, which the base install lacks: a clear message and exit 2.
status=0
"$cli" top --once >"$work/top.out" 2>"$work/top.err" || status=$?
if [ "$status" -ne 2 ] || ! grep -q "yolo-telemetry\[top\]" "$work/top.err"; then
    cat "$work/top.err"
    echo "check_wheel: top without its extra exited $status, not 2 with the install hint" >&2
    exit 1
fi
say "top without the top extra: exit 2, $(cat "$work/top.err")"

# --- The demo, scraped -------------------------------------------------------------------
# A free port from the kernel; the demo runs 5 seconds on its own while /metrics is
# polled until it has a handoff sample (deadline: the demo's own end). Its story runs
# in real time by default (a handoff every few seconds), so it is sped up 20 times here
# to show several handoffs well within the 5 seconds.
port=$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$cli" demo --duration 5 --time-scale 0.05 --port "$port" --quiet >"$work/demo.log" 2>&1 &
demo_pid=$!
scraped=0
"$work/venv/bin/python" - "$port" "$demo_pid" <<'EOF' || scraped=$?
import os
import re
import sys
import time
import urllib.request

port, pid = int(sys.argv[1]), int(sys.argv[2])
url = f"http://127.0.0.1:{port}/metrics"
sample = re.compile(r"^yolo_handoffs_total\{.*\} [0-9.e+]+$", re.MULTILINE)
deadline = time.monotonic() + 30
last = "no answer"
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = response.read().decode()
        if sample.search(body):
            print(f"  - {url}: {sample.search(body).group(0)}")
            sys.exit(0)
        last = "no yolo_handoffs_total sample yet"
    except OSError as error:  # not listening yet
        last = str(error)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break  # the demo ended before a good scrape
    time.sleep(0.2)
print(f"check_wheel: {url}: {last}", file=sys.stderr)
sys.exit(1)
EOF
status=0
wait "$demo_pid" || status=$?
demo_pid=""
if [ "$scraped" -ne 0 ]; then
    cat "$work/demo.log"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    cat "$work/demo.log"
    echo "check_wheel: the demo exited with status $status" >&2
    exit 1
fi
say "demo --duration 5 exited 0"

# --- Every module, with every extra -----------------------------------------------------
# The extras bring the OTLP, StatsD, profiling and dashboard code paths' libraries:
# every module of the wheel must then import, and the dashboard render.
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel[all]"
"$work/venv/bin/python" - <<'EOF'
import importlib
import pkgutil

count, frameworks = 0, []
for top in ("telemetry", "exporters"):
    package = importlib.import_module(top)
    for module in pkgutil.walk_packages(package.__path__, prefix=f"{top}."):
        if module.name.endswith(".__main__"):  # importing it runs the command line
            continue
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as missing:
            # A framework adapter needs its framework's own extra, not `all`; any
            # other missing module (one of ours, a dependency of `all`) fails.
            root = (missing.name or "").split(".")[0]
            if not module.name.startswith("telemetry.adapters.") or root in (
                    "telemetry", "exporters"):
                raise
            frameworks.append(f"{module.name.rsplit('.', 1)[1]} ({root})")
            continue
        count += 1
print(f"  - all {count} other modules of telemetry and exporters import; adapters that "
      f"need their framework's extra: {', '.join(frameworks) or 'none'}")
EOF
"$cli" render dashboard -o "$work/dashboard.json"
"$work/venv/bin/python" -c 'import json, sys; json.load(open(sys.argv[1]))' "$work/dashboard.json"
say "render dashboard wrote valid JSON"
