#!/usr/bin/env bash
# Every test: setup, static checks (ruff, mypy --strict, import-linter layers), unit tests, then the
# integration tests against the real local control plane and Prometheus. Prints each phase's time.
set -euo pipefail
cd "$(dirname "$0")/.."
t() { local s=$SECONDS; "$@"; echo "-- $1 ${2:-}: $((SECONDS - s))s"; }
t hack/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
t ruff check .
t ruff format --check .
t mypy
t lint-imports
t pytest -q tests/unit
t pytest -q tests/integration
