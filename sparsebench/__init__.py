"""sparsebench: put published claims about dropout and sparsity to the test."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_run"]


def __getattr__(name: str) -> Any:
    # load_run imports torch: loaded on first use, so that `import sparsebench` (every command's first
    # step) stays light.
    if name == "load_run":
        from sparsebench.loading import load_run

        return load_run
    raise AttributeError(f"module 'sparsebench' has no attribute {name!r}")


def _redeliver_swallowed_interrupts(unraisable: Any, *, passed_on: Any = sys.__unraisablehook__) -> None:
    """A ``sys.unraisablehook``: Ctrl-C that landed in a callback Python cannot raise from (a weakref
    callback inside an import, a finaliser) is sent again, a moment later, where the process handles it,
    in place of a traceback headed "Exception ignored" and a lost interrupt; every other unraisable
    exception is passed on."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        passed_on(unraisable)
        return
    if sys.is_finalizing():
        return  # the process is ending anyway
    # Not raised here, where it would only interrupt this hook, nor flagged with _thread.interrupt_main(),
    # which a main thread blocked in a wait does not see: a real SIGINT, after this hook has returned.
    resend = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT))
    resend.daemon = True
    try:
        resend.start()
    except RuntimeError:  # no new threads while the interpreter shuts down
        pass


# Here, in the package, not in a command: a sweep's worker processes (joblib's) import this package first,
# before torch, and a Ctrl-C sent to the whole process group often lands in a worker while it imports.
# (Not in sparsebench.errors: sparsebench.nn ships alone, without the app's modules.)
if sys.unraisablehook is sys.__unraisablehook__:
    sys.unraisablehook = _redeliver_swallowed_interrupts
