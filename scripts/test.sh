#!/usr/bin/env bash
# Set up ./.venv with the test extra and run the whole test suite (the README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
venv="${VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/ruff" check mlops_nb tests benchmarks
# The layer rules of ARCHITECTURE.md, as contracts in pyproject.toml.
"$venv/bin/lint-imports"
exec "$venv/bin/python" -m pytest "$@"
