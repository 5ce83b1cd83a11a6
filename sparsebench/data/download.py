"""Downloading a data set's files from its mirrors, verified and atomic.

Each file is streamed into a uniquely named ``<name>.<random>.part`` file in the destination folder, its
md5 computed on the way; only when the md5 is the one listed in ``dataset.files`` is the part file
renamed (``os.replace``) to its real name. A failed, interrupted or wrong download therefore never
leaves a file that looks complete, and two runs downloading at once do not write into the same file.
Mirrors are tried in order; a mirror that fails (unreachable, HTTP error, short or wrong content) is
skipped for the next one. When no mirror delivers, one single-line ``DataError`` says what is missing,
where it was looked for, why downloading failed and how to provide the files.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import pathlib
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from typing import Optional, Sequence

from sparsebench.errors import DataError
from sparsebench.schemas import DatasetConfig

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0  # seconds without any byte from a mirror before it is given up
CHUNK = 1 << 20
USER_AGENT = "sparsebench"  # some mirrors refuse urllib's default agent


class MirrorError(Exception):
    """One mirror could not deliver one file; the message is short and single-line."""


def md5_file(path: pathlib.Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def url_for(mirror: str, name: str) -> str:
    """The mirror's base URL joined with the file name."""
    return f"{mirror.rstrip('/')}/{name}"


def _progress_bar(total: Optional[int], name: str):
    """A tqdm bar on a terminal, else None (logs and CI stay clean)."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a missing bar must not stop a download
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, leave=False)


def _stream(url: str, part: pathlib.Path, name: str, timeout: float) -> str:
    """Write the body at ``url`` into ``part``; return its md5. Raises MirrorError."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            bar = _progress_bar(expected, name)
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except urllib.error.HTTPError as error:
        raise MirrorError(f"HTTP {error.code}") from None
    except urllib.error.URLError as error:
        reason = error.reason
        timed_out = isinstance(reason, (socket.timeout, TimeoutError))
        raise MirrorError("timed out" if timed_out else _short(reason)) from None
    except (socket.timeout, TimeoutError):
        raise MirrorError(f"timed out after {received} bytes") from None
    except http.client.HTTPException as error:  # a malformed or cut-off response
        raise MirrorError(f"{type(error).__name__} after {received} bytes") from None
    except ValueError as error:  # a malformed URL
        raise MirrorError(_short(error)) from None
    except OSError as error:  # connection reset, incomplete read, ...
        raise MirrorError(f"{_short(error)} after {received} bytes") from None
    if expected is not None and received != expected:
        raise MirrorError(f"incomplete: {received} of {expected} bytes")
    return digest.hexdigest()


def fetch(name: str, md5: str, folder: pathlib.Path, mirrors: Sequence[str],
          timeout: Optional[float] = None) -> pathlib.Path:
    """Download ``name`` into ``folder`` from the first mirror that serves it with the given md5.

    Returns the path of the complete file. Raises MirrorError whose message sums up every mirror's
    failure ("<mirror>: HTTP 404; <mirror>: md5 mismatch ...").
    """
    if not mirrors:
        raise MirrorError("no mirrors are configured (dataset.mirrors is empty)")
    timeout = TIMEOUT_S if timeout is None else timeout
    target = folder / name
    failures = []
    for mirror in mirrors:
        url = url_for(mirror, name)
        descriptor, part_name = tempfile.mkstemp(prefix=f"{name}.", suffix=".part", dir=folder)
        os.close(descriptor)
        part = pathlib.Path(part_name)
        try:
            log.info("downloading %s", url)
            found = _stream(url, part, name, timeout)
            if found != md5.lower():
                raise MirrorError(f"md5 mismatch (got {found}, expected {md5})")
            os.replace(part, target)
            log.info("downloaded %s (md5 verified)", target)
            return target
        except MirrorError as error:
            log.warning("could not download %s: %s", url, error)
            failures.append(f"{mirror}: {error}")
        finally:
            part.unlink(missing_ok=True)  # a no-op after os.replace; removes every failed or interrupted part
    raise MirrorError("; ".join(failures))


def missing_error(cfg: DatasetConfig, folder: pathlib.Path, missing: Sequence[str], reason: str,
                  note: str = "") -> DataError:
    """The one error for files that are not there and could not be downloaded (``note`` follows the names)."""
    parent = f" (or SPARSEBENCH_DATA to a folder whose '{cfg.folder}' subfolder holds them)" if cfg.folder else ""
    return DataError(
        f"data set '{cfg.name}': missing {', '.join(missing)}{note} in {folder}; not downloaded: {_short(reason)}. "
        f"Put the files in {folder}, or set dataset.root=/path/to/the/folder/holding/them{parent}"
    )


def fetch_missing(cfg: DatasetConfig, folder: pathlib.Path, missing: Sequence[str],
                  shown: Optional[Sequence[str]] = None, note: str = "") -> None:
    """Download every file of ``missing`` (names as distributed, keys of ``cfg.files``) into ``folder``.

    Raises one DataError naming the files still missing (``shown``: how to name them, same order; ``note``
    is written after the names), when ``cfg.download`` is false or a file cannot be had from any mirror.
    """
    shown = list(shown) if shown is not None else list(missing)
    if not missing:
        return
    if not cfg.download:
        raise missing_error(cfg, folder, shown, "downloading is off (dataset.download=false)", note)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise missing_error(cfg, folder, shown, f"cannot create the folder ({_short(error)})", note) from None
    for index, name in enumerate(missing):
        md5 = cfg.files.get(name)
        try:
            if not md5:
                raise MirrorError(f"dataset.files lists no md5 for {name}, so a download could not be verified")
            fetch(name, md5, folder, cfg.mirrors)
        except MirrorError as error:
            raise missing_error(cfg, folder, shown[index:], f"{name}: {error}", note) from None
        except OSError as error:  # the folder is not writable, the disk is full, ...
            raise missing_error(cfg, folder, shown[index:], f"cannot write in the folder ({_short(error)})",
                                note) from None


def _short(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split()) or type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
