#!/usr/bin/env bash
# Static checks that CI runs before the tests: lint, format, types, dead code.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY -m ruff check .
$PY -m ruff format --check .
$PY -m mypy
$PY -m vulture
