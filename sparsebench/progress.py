"""What a run shows while it works: a progress bar per long phase on a terminal, the same log lines everywhere.

Log lines are the record of what happened: each epoch's line (with its validation or test accuracy),
each measurement's start and duration. They go to ``run.log`` and the console whether or not a terminal
is attached, so a run's log never depends on where it ran. Bars only add, on a terminal, what a log
cannot: where a long phase is now and its ETA (training's epochs and batches, pruning's fractions and
their fine-tunes, the noise levels, the passes with dropout left on). While bars show, console log lines
are written through tqdm (``logging_redirect_tqdm``) so that a line never lands inside a bar; the run's
bars vanish when their phase ends (``leave=False``): the lines above them say what was done.

Code deep in a measurement does not know whether its run shows bars: ``showing`` says so for the block
of one run, and ``steps`` wraps a loop in a bar only inside such a block.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import TypeVar

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

# tqdm's default lock is a multiprocessing lock: in a spawned worker (loky) that is a named semaphore, and
# when the worker dies with its command (Ctrl-C), the resource tracker prints a "leaked semaphore" warning.
# Spawned workers share no lock anyway (each makes its own), so a thread lock does the same work.
tqdm.set_lock(threading.RLock())

T = TypeVar("T")
_bars: ContextVar[bool] = ContextVar("sparsebench_bars", default=False)


def progress_enabled(setting: str) -> bool:
    """auto: bars only on an interactive terminal (quiet in CI and logs)."""
    return setting == "on" or (setting == "auto" and sys.stderr.isatty())


@contextmanager
def showing(enabled: bool) -> Iterator[None]:
    """Within the block, ``steps`` and ``bar`` show bars when ``enabled``, and console log lines (the
    root logger's stream handlers, Hydra's or basicConfig's) are written above them."""
    token = _bars.set(enabled)
    try:
        with logging_redirect_tqdm(loggers=[logging.root]) if enabled else nullcontext():
            yield
    finally:
        _bars.reset(token)


def shown() -> bool:
    """Whether bars show here (inside ``showing(True)``)."""
    return _bars.get()


def bar(iterable: Iterable[T] | None = None, *, desc: str, total: int | None = None, enabled: bool | None = None,
        leave: bool = False, **options) -> tqdm:
    """A tqdm bar with sparsebench's settings; shown when ``enabled`` (None: as ``showing`` says)."""
    on = shown() if enabled is None else enabled
    return tqdm(iterable, desc=desc, total=total, disable=not on, leave=leave, dynamic_ncols=True, **options)


def steps(iterable: Iterable[T], desc: str) -> Iterable[T]:
    """``iterable`` as it is, or, where bars show, wrapped in a bar named ``desc`` (with its ETA)."""
    return bar(iterable, desc=desc) if shown() else iterable


def duration(seconds: float) -> str:
    """``4.2 s``, ``3m05s`` or ``1h02m``: a time left or taken, as a person reads it."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


__all__ = ["bar", "duration", "progress_enabled", "showing", "shown", "steps"]
