#!/usr/bin/env bash
# Install, then run the benchmark suite (bench/run.py); arguments go to it (--help).
# wrk (Debian package) drives the load; the serving figures are skipped without it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if ! command -v wrk >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk) >/dev/null \
        || echo "wrk not installed: serving figures skipped"
fi
exec .venv/bin/python -m bench.run "$@"
