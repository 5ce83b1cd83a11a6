#!/usr/bin/env bash
# Create .venv (if missing) and install sparsebench into it, editable, with the extras named as
# arguments (test, launchers). PyTorch comes as the CPU build unless an NVIDIA GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
. .venv/bin/activate

if ! python -c "import torch" 2>/dev/null; then
  # pyproject.toml caps torch at 2.13.x. On a machine without a GPU, take the CPU build where the
  # PyTorch index is reachable; otherwise plain PyPI (where a local CPU wheel may be configured).
  if ! command -v nvidia-smi >/dev/null 2>&1 && python - <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen("https://download.pytorch.org/whl/cpu/torch/", timeout=5)
except Exception:
    sys.exit(1)
PY
  then
    pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  else
    pip install -q "torch==2.13.0"
  fi
fi

extras=$(IFS=,; echo "$*")
pip install -q -e ".${extras:+[$extras]}"

# DropConnect's per-example CPU kernel is compiled for this CPU's vector instructions on first use (about
# half a minute of g++, cached by torch in TORCH_EXTENSIONS_DIR): built here so that no run or test waits.
echo "DropConnect kernel: $(python -c 'from sparsebench.nn.dropconnect import build_kernel; print(build_kernel())')"
