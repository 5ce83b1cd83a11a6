#!/usr/bin/env bash
# Install sparsebench into .venv and run the main job on the embedded data set (no network needed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
. .venv/bin/activate
sparsebench "$@"
