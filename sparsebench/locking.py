"""Locks on files, held by the operating system (``filelock``'s native lock: ``flock`` on Unix): the OS
releases them when their process dies, even by SIGKILL, so a killed run or claims command never leaves
a run or a report folder locked. Run folders take them with ``wait=False`` (a second process is told
the run is busy); a claims report folder with ``wait=True`` (a second command waits its turn).

filelock opens the lock file without following a symbolic link (O_NOFOLLOW, from 3.30 on) and never
writes to the file of a lock it did not win; a linked lock file is refused first, in one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from sparsebench.atomic import refuse_link


class Busy(Exception):
    """Another process holds the lock."""


def _lock(path: Path) -> FileLock:
    # No soft (existence) fallback on a file system without flock: a soft lock outlives a killed holder.
    return FileLock(path, fallback_to_soft=False)


@contextmanager
def exclusive(path: Path, *, wait: bool, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the lock of ``path`` (created if need be). ``wait=False``: raise Busy when another process holds
    it; ``wait=True``: call ``on_wait`` once, then wait for it."""
    refuse_link(path)
    lock = _lock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise Busy(str(path)) from None
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def held(path: Path) -> bool:
    """Whether another process holds the lock of ``path`` now. Creates nothing and keeps nothing: it only
    tries the lock for an instant. A link is never a held lock (no one can take it)."""
    if not os.path.lexists(path) or os.path.islink(path):
        return False
    lock = _lock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


__all__ = ["Busy", "exclusive", "held"]
