#!/usr/bin/env bash
# Set up ./.venv and run the main job: the quickstart notebook through every stage, the export, and
# one retraining run, all recorded in ./mlops-demo/mlops.db (the README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="${VENV:-.venv}"
exec "$venv/bin/mlops-nb" demo "$@"
