"""One convention for every kind of plug-in: a named ``Registry`` that each plug-in joins explicitly.

Regularizers, models, data formats, noise kinds, trackers, task sequences, figures and measurements each
have one registry, defined in the package that holds them, and each plug-in says where it belongs with
``@REGISTRY.register("name")`` next to its code; the package's ``__init__`` imports its plug-in modules
by name, so what is registered is what the code says, not what a folder happens to hold.

A name that is not registered is refused as a configuration error naming the choices, so a command
line with a typo stops in one line before any work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from sparsebench.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> plug-ins of one kind, in the order they were registered."""

    def __init__(self, kind: str, key: str):
        self.kind = kind  # what one entry is, for messages: "regularizer"
        self.key = key  # the config key that chooses one: "regularizer.name"
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("mlp")`` on the plug-in (a class, a function or a module object)."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"two {self.kind}s registered as {name!r}: {self._entries[name]!r} and {entry!r}")
        self._entries[name] = entry

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plug-in registered for a while, e.g. by a test)."""
        self._entries.pop(name, None)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(self.key, name, f"choose a {self.kind} among {', '.join(self._entries)}") from None

    def get(self, name: str, default: T | None = None) -> T | None:
        return self._entries.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self):
        return self._entries.items()

    def values(self):
        return self._entries.values()

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self._entries)})"


__all__ = ["Registry"]
