"""Composed experiments kept between commands: a claims plan of the same experiments, profile and settings,
with the same sparsebench, the same configs and the same Hydra, is read back instead of composed again.

An entry is the list of (job's overrides, validated RunConfig) that ``sweep.compose_jobs`` gave, pickled,
in ``<user cache>/sparsebench/plans/<fingerprint>/<entry>.pickle``. The fingerprint covers all that a
composition reads: the content of every file of the sparsebench package (its code, which registers the
schemas and validates, and its configs), of every config file on Hydra's search path (Hydra's own, its
plugins', any added folder), the code of Hydra's plugins, the versions of Python, hydra-core, omegaconf
and torch, and the environment variables that a config reads (``oc.env``). Only the check that looks
outside these, whether a tracker's package is installed, is made again on every read. A change to any
of them is another fingerprint, so an entry is never used for what it was not made from; the last few
fingerprints are kept, the older folders removed. The folder can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import pickle
import re
import shutil
import sys
from pathlib import Path

from sparsebench.atomic import atomic_write_bytes
from sparsebench.data.identity import cache_path
from sparsebench.errors import EnvironmentFault
from sparsebench.sweep import config_folders_here
from sparsebench.trackers import check_trackers

log = logging.getLogger("sparsebench")
KEPT = 4  # fingerprints whose entries are kept (checkouts or versions used in turn)
_ENV = re.compile(rb"oc\.env:\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)")
_SKIPPED = ("__pycache__",)


def folder() -> Path:
    return cache_path().parent / "plans"  # beside the data digests, in <user cache>/sparsebench


def fingerprint() -> str:
    """The hash of all that composing and validating a plan reads (see the module docstring): the config
    folders of Hydra's search path when Hydra is initialised, else of sparsebench's own."""
    import sparsebench

    digest = hashlib.sha256()
    names: set[bytes] = set()
    package = Path(sparsebench.__file__).resolve().parent
    # Its configs too (installed inside it, or a link to them in a checkout: followed), and every other
    # config folder on Hydra's search path.
    roots = [package, *config_folders_here()]
    seen: set[Path] = set()
    for root in roots:
        for path in _files(root):
            real = path.resolve()
            if real in seen or path.parts[-3:-1] == ("data", "embedded"):
                continue  # seen through another root; the embedded data: a composition only names its folder
            seen.add(real)
            data = real.read_bytes()
            digest.update(f"{real}\0{len(data)}\0".encode())
            digest.update(data)
            if real.suffix in (".yaml", ".yml"):
                names.update(_ENV.findall(data))
    try:
        import hydra_plugins

        for root in hydra_plugins.__path__:  # plugins register their configs in code
            for path in _files(Path(root)):
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    except ImportError:
        pass
    versions = [sys.version] + [_version(name) for name in ("hydra-core", "omegaconf", "torch")]
    environment = [f"{name.decode()}={os.environ.get(name.decode())}" for name in sorted(names)]
    digest.update("\0".join(versions + environment).encode())
    return digest.hexdigest()[:24]


def stamp(overrides: list[str]) -> str | None:
    """The fingerprint a command's plan is kept under; None (nothing kept) when the overrides set Hydra's
    own settings (a search path added), which the composition reads and the fingerprint does not."""
    return None if any(o.lstrip("+~").startswith("hydra") for o in overrides) else fingerprint()


def entry(experiment: str, profile: str, overrides: list[str]) -> str:
    # An override can read the environment itself (train.epochs=${oc.env:N}): the entry holds the value it
    # resolved to, so the variables the overrides read are part of the key, as the configs' are of the stamp.
    names = sorted({name.decode() for o in overrides for name in _ENV.findall(o.encode())})
    environment = [f"{name}={os.environ.get(name)}" for name in names]
    return hashlib.sha256("\0".join([experiment, profile, *overrides, *environment]).encode()).hexdigest()[:24]


def read(stamp: str, key: str) -> list | None:
    """The jobs kept for ``key`` under ``stamp``, the trackers' packages checked again; None when none are."""
    jobs = _load(stamp, key)
    if jobs is None:
        return None
    for _, config in jobs:
        check_trackers(config.logger)
    return jobs


def _load(stamp: str, key: str):
    """What is kept for ``key`` under ``stamp``; None when nothing is, or a damaged or foreign file (made again)."""
    try:
        return pickle.loads((folder() / stamp / f"{key}.pickle").read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None


def write(stamp: str, key: str, jobs) -> None:
    """Keep ``jobs`` (best effort: a cache that cannot be written costs the next command
    the composing)."""
    here = folder() / stamp
    try:
        atomic_write_bytes(here / f"{key}.pickle", pickle.dumps(jobs, protocol=pickle.HIGHEST_PROTOCOL))
        others = sorted((p for p in folder().iterdir() if p.is_dir() and p.name != stamp),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for old in others[KEPT - 1:]:
            shutil.rmtree(old, ignore_errors=True)
    except (OSError, EnvironmentFault) as error:
        log.debug("claims plan cache %s not written: %s", here, error)


def _files(root: Path) -> list[Path]:
    """Every file under ``root`` (links to folders followed, as Hydra follows them), in a stable order."""
    found = []
    for top, folders, files in os.walk(root, followlinks=True):
        folders[:] = sorted(f for f in folders if f not in _SKIPPED)
        found += [Path(top) / name for name in sorted(files)]
    return found


def _version(name: str) -> str:
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{name} -"
