#!/usr/bin/env bash
# Install everything (idempotent), run the static checks, then the whole test suite: SQLite always, PostgreSQL
# when 127.0.0.1:5432 answers (IA_CONTINU_TEST_PG_URL to point elsewhere). Extra arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# What the README promises about the code (lint, format, types, no dead code) is checked first.
bash scripts/check.sh
export MLFLOW_DISABLE_TELEMETRY=true PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}
exec .venv/bin/python -m pytest "$@"
