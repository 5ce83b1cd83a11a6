"""What a record says about where it was made: versions, commit, machine."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("sparsebench", "torch", "numpy", "hydra-core", "omegaconf", "pandas")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the sparsebench source in use (with ``+dirty`` for uncommitted changes), or None
    when it is not a git checkout."""
    source = Path(__file__).resolve().parents[2]
    if not (source / "pyproject.toml").is_file():  # an installed copy: its source checkout is unknown
        return None
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def cpu_model() -> str:
    """The processor's model name (Linux's /proc/cpuinfo; elsewhere what the platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict:
    # The CPU and the vector kernels PyTorch picks for it (AVX2, AVX512): two hosts with different kernels
    # give different float results from the first epoch, and a tuned choice between near-tied points can
    # follow them (docs/claims.md, "Two hosts, two sets of choices").
    info = {
        "python": sys.version.split()[0],
        "versions": {package: _version(package) for package in PACKAGES},
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info
