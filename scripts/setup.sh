#!/usr/bin/env bash
# Set up mlops-nb in ./.venv on a fresh Debian machine (Python 3.10+): the system packages it needs
# (venv support, Node.js to build the JupyterLab extension, Chromium for browser tests, cron for the
# scheduled-retraining test), then the project itself. Safe to run again; it only adds what is missing.
#   scripts/setup.sh            # mlops-nb with its notebook stack (the jupyter extra)
#   scripts/setup.sh test       # and the test extra
#   scripts/setup.sh runtime    # the lean runtime only (retrain, predict, verify, serve; no Jupyter)
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"

missing=()
"$python" -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
command -v git >/dev/null 2>&1 || missing+=(git)
if [ "$extra" = test ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  { command -v cron || [ -x /usr/sbin/cron ]; } >/dev/null 2>&1 || missing+=(cron)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "setup: run as root or install these with apt-get first: ${missing[*]}" >&2; exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# jlpm (from jupyterlab) must be on PATH while pip builds the extension.
export PATH="$PWD/$venv/bin:$PATH"
case "$extra" in
  test) "$venv/bin/python" -m pip install -q -e ".[jupyter,test]" ;;
  runtime) "$venv/bin/python" -m pip install -q -e . ;;
  *) "$venv/bin/python" -m pip install -q -e ".[jupyter]" ;;
esac
