#!/usr/bin/env bash
# Install sparsebench with the extras its tests need into .venv and run the test suite: test, the
# launchers, the trackers and the Optuna sweeper (about 300 MB and 2 minutes beyond the base install).
# Ray (the ray extra, about 380 MB) is left out: its test skips.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test launchers trackers tune
. .venv/bin/activate
python -m pytest -q "$@"
