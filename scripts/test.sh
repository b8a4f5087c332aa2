#!/usr/bin/env bash
# Install everything (idempotent) and run the whole test suite: SQLite always, PostgreSQL
# when 127.0.0.1:5432 answers (IA_CONTINU_TEST_PG_URL to point elsewhere). Extra arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export MLFLOW_DISABLE_TELEMETRY=true PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}
exec .venv/bin/python -m pytest "$@"
