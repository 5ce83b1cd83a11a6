"""Atomic file writes: a temporary file in the same folder, renamed into place once complete, so that
an interrupted writer never leaves a partial file under the final name (records, reports, figures).

The content is made in memory first and then written, so that a full disk shows as what it is: one
line saying how many bytes were needed where (``DiskFull``), never a half-written file or a
serialiser's own message.

Nothing is written through a symbolic link: the rename replaces a link at the final name (never its
target), and files appended in place (logs, lock files) are opened with ``open_no_follow``. Results
folders are shared and unpacked from archives; a planted link could point at any file.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from sparsebench.errors import DiskFull, EnvironmentFault

# mkstemp creates files readable by their owner only; written files should get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)
FULL = (errno.ENOSPC, errno.EDQUOT)
DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def _free(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free:,} bytes free"
    except OSError:
        return "free space unknown"


def environment_fault(error: OSError, path: Path, needed: int | None = None) -> EnvironmentFault | None:
    """The one-line fault of the machine behind ``error`` (full disk, no permission, read-only
    folder) met while writing ``path``; None for other errors."""
    if error.errno in FULL:
        size = f"{needed:,} bytes" if needed is not None else "more space"
        return DiskFull(f"disk full: writing {path.name} needed {size} in {path.parent} ({_free(path.parent)}); "
                        f"free some space and run the same command again to resume")
    if error.errno in DENIED or isinstance(error, (PermissionError, NotADirectoryError, FileExistsError)):
        return EnvironmentFault(f"cannot write {path}: {error.strerror or error}; choose a folder you can write "
                                f"to (results_dir=..., out=...)")
    return None


def writable_folder(folder: str | Path, key: str) -> Path:
    """``folder``, created if need be, after checking that files can be written in it; raises a
    one-line EnvironmentFault naming ``key`` (the setting that chose it) before any work otherwise."""
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise EnvironmentFault(f"{key}={folder} cannot be written: {error.strerror or error}; choose a folder you "
                               f"can write to") from None
    return folder


def refuse_link(path: str | Path, where: str = "") -> None:
    """Raise a one-line EnvironmentFault when ``path`` is a symbolic link."""
    if os.path.islink(path):
        raise EnvironmentFault(f"{path} is a symbolic link (to {os.readlink(path)}){where}; sparsebench never "
                               f"follows a link in a results folder: remove the link (rm {path}) and run the same "
                               f"command again")


def open_no_follow(path: str | Path, flags: int, mode: int = 0o666) -> int:
    """``os.open`` of ``path`` that refuses a symbolic link in one line (EnvironmentFault) instead of following
    it (O_NOFOLLOW also closes the gap between the check and the open)."""
    refuse_link(path)
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), mode)


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically. Raises EnvironmentFault (DiskFull for a full disk)
    when the machine refuses the write; nothing is left under ``path`` or beside it then."""
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(handle, 0o666 & ~_UMASK)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        fault = environment_fault(error, path, len(data))
        if fault is None:
            raise
        raise fault from None
    except BaseException:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """``write`` into memory, then :func:`atomic_write_bytes` (for serialisers that take a stream)."""
    buffer = io.BytesIO()
    write(buffer)
    return atomic_write_bytes(path, buffer.getbuffer())


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=1, allow_nan=True) + "\n")
