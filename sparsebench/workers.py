"""Worker processes die with the command that started them.

A sweep's parallel jobs (``hydra/launcher=local`` or ``joblib``: joblib's loky workers; ``submitit_local``
jobs) and the claims command's parallel runs are child processes of the ``sparsebench`` or
``sparsebench-claims`` command. When that command is killed (kill -9, an OOM kill, a closed session),
nothing tells its children: they would train on, orphaned, holding cores and run locks. So the command
marks itself in the environment its children inherit, and each job, when it starts in such a child, asks
the kernel to kill it when its parent dies (Linux: ``prctl(PR_SET_PDEATHSIG)``; elsewhere a thread
watches the parent). Jobs on other machines (SLURM, Ray) and the command's own process are left alone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading
import time

LAUNCHER = "SPARSEBENCH_LAUNCHER"  # "<host>:<pid>" of the command whose children die with it
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
QUIET_TRACKER = "ignore:resource_tracker:UserWarning"  # a -W option: the warnings that begin so


def mark_launcher() -> None:
    """Called by a command before it starts any worker."""
    os.environ[LAUNCHER] = f"{socket.gethostname()}:{os.getpid()}"
    # When workers die with the command (Ctrl-C, kill), the resource tracker process that joblib's loky
    # starts unlinks the semaphores they shared, then warns that they had "leaked", a note about its own
    # bookkeeping that is no concern of the user's runs. The tracker takes its -W options from these.
    if QUIET_TRACKER not in sys.warnoptions:
        sys.warnoptions.append(QUIET_TRACKER)


def _launcher_pid() -> int | None:
    host, _, pid = os.environ.get(LAUNCHER, "").rpartition(":")
    if not pid.isdigit() or host != socket.gethostname():
        return None
    return int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_launcher() -> None:
    """In a child process of a marked command: be killed (SIGKILL) when the command dies. Idempotent;
    does nothing in the command itself and in processes that are not its children."""
    launcher = _launcher_pid()
    if launcher is None or launcher == os.getpid():
        return
    if os.getppid() != launcher:
        if not _alive(launcher):  # orphaned already, before this job could tie itself to its parent
            os.kill(os.getpid(), signal.SIGKILL)
        return
    if sys.platform.startswith("linux"):
        # The standard library has no prctl; libc's is one call. The kernel then sends the signal itself,
        # however the parent dies, with no thread of ours involved.
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    elif not getattr(die_with_launcher, "watching", False):
        die_with_launcher.watching = True  # type: ignore[attr-defined]
        threading.Thread(target=_watch_parent, args=(launcher,), daemon=True, name="die-with-launcher").start()
    if os.getppid() != launcher:  # the parent died between the check above and prctl
        os.kill(os.getpid(), signal.SIGKILL)


def _watch_parent(launcher: int) -> None:
    while os.getppid() == launcher:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)
