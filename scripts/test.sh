#!/usr/bin/env bash
# Install sparsebench with its test and launcher extras into .venv and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test launchers
. .venv/bin/activate
python -m pytest -q "$@"
