"""User-facing errors: each one renders as a single line that says what is wrong and how to fix it."""

from __future__ import annotations

import sys
from typing import Any


class SparsebenchError(Exception):
    """An error caused by the user's input or environment, shown without a traceback."""


class ConfigError(SparsebenchError):
    """A configuration value that is not allowed.

    ``key`` is the dotted config key (``regularizer.p``); a schema raises it with the bare field name
    and the validator prefixes the group, so messages always name the full key.
    """

    def __init__(self, key: str, value: Any, allowed: str, fix: str | None = None):
        self.key, self.value, self.allowed, self.fix = key, value, allowed, fix
        super().__init__(self._render())

    def _render(self) -> str:
        message = f"{self.key}={self.value!r} is not allowed: {self.allowed}"
        return f"{message}; {self.fix}" if self.fix else message

    def under(self, prefix: str) -> "ConfigError":
        """The same error with its key placed under ``prefix`` (``p`` -> ``regularizer.p``)."""
        return ConfigError(f"{prefix}.{self.key}", self.value, self.allowed, self.fix)


class DataError(SparsebenchError):
    """A data set that is missing, truncated or malformed."""


class EnvironmentFault(SparsebenchError):
    """The machine, not the run, failed: a full disk, a folder that cannot be written, a lost device.
    No record is written, so running the same command again resumes."""


class DiskFull(EnvironmentFault):
    """No space left where a file had to be written."""


class RunError(SparsebenchError):
    """A run that cannot proceed (divergence, memory budget exceeded, ...)."""


def check(condition: bool, key: str, value: Any, allowed: str, fix: str | None = None) -> None:
    """Raise ConfigError(key, value, allowed, fix) unless ``condition`` holds."""
    if not condition:
        raise ConfigError(key, value, allowed, fix)


def interrupted(command: str, advice: str) -> int:
    """Say that Ctrl-C stopped ``command`` and how to go on; the exit status for it (130, as shells use)."""
    print(f"{command}: interrupted; {advice}", file=sys.stderr)
    # CPython remembers a KeyboardInterrupt that escaped an exec() of a string (dataclasses build their
    # methods that way, e.g. during torch's lazy imports) and, for `python -m`, ends the process by SIGINT
    # in place of the status asked for, though the interrupt was handled. Each exec() of a string clears it.
    exec("")
    return 130
