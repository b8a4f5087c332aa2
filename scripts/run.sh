#!/usr/bin/env bash
# The first command of the README: install (idempotent), then start the whole loop locally.
# Options are passed to `ia-continu run` (e.g. --no-mlflow-ui). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/ia-continu run "$@"
