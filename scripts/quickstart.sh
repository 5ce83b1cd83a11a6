#!/usr/bin/env bash
# Install sparsebench into .venv and run the main job: every claim on the smoke budget, on the
# embedded MNIST subset (no network needed). Extra arguments go to sparsebench-claims.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
. .venv/bin/activate
sparsebench-claims profile=smoke "$@"
