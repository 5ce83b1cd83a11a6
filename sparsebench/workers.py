"""Worker processes die with the command that started them.

A sweep's parallel jobs (``hydra/launcher=local`` or ``joblib``: joblib's loky workers; ``submitit_local``
jobs) and the claims command's parallel runs are child processes of the ``sparsebench`` or
``sparsebench-claims`` command. When that command is killed (kill -9, an OOM kill, a closed session),
nothing tells its children: they would train on, orphaned, holding cores and run locks. So the command
marks itself in the environment its children inherit, and each job, when it starts in such a child, asks
the kernel to kill it when its parent dies (Linux: ``prctl(PR_SET_PDEATHSIG)``; elsewhere a thread
watches the parent). Jobs on other machines (SLURM, Ray) and the command's own process are left alone.

Also here: ``forked_map``, work of a few seconds shared with forks of the command (composing a claims
plan), which end with their share.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

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


# ----------------------------------------------------------------------------------------------------
# A pool of worker processes that survives the loss of one


@dataclass(frozen=True)
class Lost:
    """A job whose worker process died under it (SIGKILL from the OOM killer, a crash): no result."""

    exitcode: int  # negative: the signal that killed it

    def __str__(self) -> str:
        return f"killed by signal {-self.exitcode}" if self.exitcode < 0 else f"ended with exit status {self.exitcode}"


def _serve(connection) -> None:
    """A worker: run each job the parent sends, send back (index, "done" or "raised", value)."""
    die_with_launcher()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends the workers
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        index, function, arguments = message
        try:
            connection.send((index, "done", function(*arguments)))
        except Exception as error:  # noqa: BLE001 - a bug of the job: the parent raises it
            connection.send((index, "raised", error))


def run_each(function: Callable, arguments: list[tuple], processes: int) -> Iterator[tuple[int, Any]]:
    """``function(*arguments[i])`` for every i, ``processes`` at a time in worker processes, yielded as
    (i, result) as each ends. A job whose worker dies (killed, crashed) yields (i, Lost) and a fresh
    worker takes the next job: unlike joblib's and concurrent.futures' pools, the loss of one worker
    costs only its own job, never the others in flight. A job that raises raises here. ``function``
    must be importable by name (it is sent to the worker by pickling)."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no fork of a threaded parent
    todo = list(enumerate(arguments))[::-1]
    idle: list[tuple[Any, Any]] = []
    busy: dict[Any, tuple[Any, Any, int]] = {}  # the process's sentinel -> (process, connection, job index)

    def start() -> tuple[Any, Any]:
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_serve, args=(child_end,), daemon=True, name="sparsebench-worker")
        process.start()
        child_end.close()
        return process, parent_end

    try:
        idle = [start() for _ in range(max(1, min(processes, len(todo))))]
        while todo or busy:
            while todo and idle:
                process, connection = idle.pop()
                if not process.is_alive():  # died while idle: replaced, its job never lost
                    connection.close()
                    idle.append(start())
                    continue
                index, args = todo.pop()
                busy[process.sentinel] = (process, connection, index)
                try:
                    connection.send((index, function, args))
                except OSError:  # died just now (a broken or reset pipe): the wait below says so
                    pass
            ready = multiprocessing.connection.wait(
                [item[1] for item in busy.values()] + list(busy), timeout=None)
            for sentinel, (process, connection, index) in list(busy.items()):
                if connection not in ready and sentinel not in ready:
                    continue
                try:
                    message = connection.recv() if connection.poll() else None
                except (EOFError, OSError):  # the worker is gone: its end closed (or reset) with it
                    message = None
                del busy[sentinel]
                if message is not None:
                    idle.append((process, connection))
                    _, outcome, value = message
                    if outcome == "raised":
                        raise value
                    yield index, value
                    continue
                process.join()
                connection.close()
                yield index, Lost(process.exitcode if process.exitcode is not None else -signal.SIGKILL)
                if todo:
                    idle.append(start())
    finally:
        for process, connection in idle:  # waiting for a job: told to stop
            try:
                connection.send(None)
            except (OSError, ValueError):
                pass
        for process, _, _ in busy.values():  # a job in flight when the caller stopped (Ctrl-C, an error)
            process.terminate()
        for process in [p for p, _ in idle] + [p for p, _, _ in busy.values()]:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


# ----------------------------------------------------------------------------------------------------
# Short work shared with forks of this process


def forked_map(function: Callable[[Any], Any], items: list, processes: int,
               initializer: Callable[[], None] | None = None) -> list:
    """``[function(item) for item in items]``, the items shared among ``processes`` processes: this one
    and forks of it. A fork starts in milliseconds with all that this process has imported and set up
    (run_each's fresh interpreters spend seconds importing), so it pays for work of a few seconds on that
    state, such as composing configs with Hydra initialised here. The forks start at once, every process
    taking every ``processes``-th item (doing the first item here before forking, so that what its first
    use sets up is shared, kept the other cores idle for longer than it saved: 0.3 s of a claims plan).
    ``initializer`` runs first in each fork.
    Each result must pickle; a fork that raises or dies raises here. Linux only (forking a process with
    the frameworks macOS loads is not safe): elsewhere, and for one process, everything runs here."""
    processes = max(1, min(processes, len(items)))
    if processes == 1 or not sys.platform.startswith("linux"):
        return [function(item) for item in items]
    results: list = [None] * len(items)
    children: list[tuple[int, int, range]] = []  # (pid, read end of its pipe, its items' indices)
    try:
        for number in range(1, processes):
            share = range(number, len(items), processes)
            read, write = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the fork: its share to the pipe, then gone without the parent's exit handlers
                status = 1
                try:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it ends the forks
                    os.close(read)
                    try:
                        if initializer is not None:
                            initializer()
                        message = ("done", [function(items[index]) for index in share])
                    except Exception:  # noqa: BLE001 - a bug of the function: the parent raises it
                        message = ("raised", traceback.format_exc())
                    with os.fdopen(write, "wb") as stream:
                        pickle.dump(message, stream)
                    status = 0
                finally:
                    os._exit(status)
            os.close(write)
            children.append((pid, read, share))
        for index in range(0, len(items), processes):
            results[index] = function(items[index])
        for child in list(children):
            pid, read, share = child
            with os.fdopen(read, "rb") as stream:
                data = stream.read()
            _, status = os.waitpid(pid, 0)
            children.remove(child)
            if not data:
                lost = Lost(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
                raise RuntimeError(f"a forked worker ended without a result ({lost})")
            outcome, value = pickle.loads(data)
            if outcome == "raised":
                raise RuntimeError(f"a forked worker raised:\n{value}")
            for index, result in zip(share, value):
                results[index] = result
    finally:
        for pid, read, _ in children:  # still running when this process stopped (Ctrl-C, an error)
            try:
                os.close(read)
            except OSError:  # closed already, by the read that was interrupted
                pass
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return results
