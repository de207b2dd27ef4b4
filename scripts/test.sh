#!/usr/bin/env bash
# Set up ./.venv with the test extra and run the whole test suite (the README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
venv="${VENV:-.venv}"
# The browser and cron tests fail rather than skip without these; say so before a 10-minute run.
[ -x /usr/bin/chromium ] || { echo "test: /usr/bin/chromium is missing: apt-get install chromium" >&2; exit 1; }
{ command -v cron || [ -x /usr/sbin/cron ]; } >/dev/null 2>&1 || {
  echo "test: cron is missing: apt-get install cron" >&2; exit 1; }
export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/ruff" check mlops_nb tests benchmarks
# The layer rules of ARCHITECTURE.md, as contracts in pyproject.toml.
"$venv/bin/lint-imports"
exec "$venv/bin/python" -m pytest "$@"
