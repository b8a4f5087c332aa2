#!/usr/bin/env bash
# Create .venv and install ia-continu with its pinned stack (and dev tools). Idempotent.
# Every version comes from docker/requirements-dev.lock: the images' lock
# (docker/requirements.lock) plus the dev tools, at the same versions, so this machine, CI and
# the images run the same stack. Packages installed by hand beside it are left in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! command -v uv >/dev/null 2>&1 && ! "$PY" -m uv --version >/dev/null 2>&1; then
    "$PY" -m pip install --quiet --disable-pip-version-check uv
fi
UV="uv"; command -v uv >/dev/null 2>&1 || UV="$PY -m uv"
[ -x .venv/bin/python ] || $UV venv --quiet --python "$PY" .venv
# --compile-bytecode: the machine sets PYTHONDONTWRITEBYTECODE=1; without .pyc files every
# import of the stack costs about twice as long.
$UV pip install --quiet --compile-bytecode --python .venv/bin/python -r docker/requirements-dev.lock
# The project itself, editable; its dependencies are the lock's, not resolved again.
$UV pip install --quiet --compile-bytecode --python .venv/bin/python --no-deps -e .
