#!/usr/bin/env bash
# Install sparsebench with the extras its tests need into .venv and run the test suite in its two lanes:
# the fast lane (plain pytest: every test of logic, one worker per logical CPU, 2 to 5 minutes on 2
# cores as the host goes), then the system lane (pytest -m system, in one process: the commands as
# processes, signals, kill and resume, launchers, full claims runs; 20-30 minutes more). All of .ci/run took
# 29.5 minutes on CI's host on 2026-12-07, install included.
# Both run, with their 25 slowest tests listed; the script fails if either fails. Arguments go to both
# (e.g. -x, or a test file). Installs the test extra, the launchers, the trackers and the Optuna sweeper
# (about 300 MB and 2 minutes beyond the base install); Ray (the ray extra, about 380 MB) is left out:
# its test skips.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test launchers trackers tune
. .venv/bin/activate
failed=0
lane() {  # name, then pytest's arguments; exit status 5 (no test of this lane among those asked for) is no failure
  echo "== $1 =="
  shift
  local code=0
  python -m pytest -q --durations=25 "$@" || code=$?
  if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then failed=1; fi
}
lane "fast lane (pytest)" "$@"
lane "system lane (pytest -m system)" -m system "$@"
exit "$failed"
