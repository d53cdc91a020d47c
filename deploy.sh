#!/usr/bin/env bash
# Deploy Scarab: creates the venv on first use, then hands over to `scarab deploy`.
# Every argument is passed through, e.g. ./deploy.sh --stage prod --dry-run
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
if [ ! -x "$VENV/bin/scarab" ]; then
    echo "deploy.sh: creating $VENV (first run only)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r requirements.txt
    "$VENV/bin/python" -m pip install --quiet --no-deps -e .
fi
exec "$VENV/bin/scarab" deploy "$@"
