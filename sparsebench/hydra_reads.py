"""Hydra's config files read once per command, not once per composition.

Hydra's Compose API keeps what it reads for one composition only: hydra-core 1.3 makes a new caching
repository for every compose (deep-copying the whole repository first) and reads and parses each file
again. A claims plan composes its experiments some 35 times over the same ~45 files, and those reads
were about a fifth of its time. Hydra has no public setting for this, so ``files_read_once()`` wraps the
two steps of its repository (hydra-core is pinned below 1.4 in pyproject.toml): each file's loaded form
is kept, keyed by the search path it was found on and its path, and each composition gets its own deep
copy (Hydra changes what it loads while merging); the repository is copied shallowly, as Hydra only
ever replaces its list of sources. Config files must not change while it lasts: one command's planning.
What the ConfigStore holds (the schemas, code-registered configs) is left to Hydra, which copies it on
every load anyway: a node stored again while it lasts is read as stored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

from hydra._internal import config_repository

_active = False  # files_read_once() is in effect in this process


@contextmanager
def files_read_once() -> Iterator[None]:
    """Within it, every Hydra composition of this process (and of its forks) reads each file once. Used
    inside itself, the outer one stays in effect."""
    global _active
    if _active:
        yield
        return
    repository, caching = config_repository.ConfigRepository, config_repository.CachingConfigRepository
    load, start = repository.load_config, caching.__init__
    kept: dict[tuple, object] = {}

    def load_once(self, config_path: str):
        source = self._find_object_source(config_path=config_path, object_type=config_repository.ObjectType.CONFIG)
        if source is None or type(source).__name__ == "StructuredConfigSource":
            return load(self, config_path)
        key = (tuple((s.provider, s.path) for s in self.sources), config_path)
        if key not in kept:
            kept[key] = load(self, config_path)
        result = kept[key]
        mine = copy.copy(result)  # the reader (its source) shared, what Hydra may change copied
        mine.config = copy.deepcopy(result.config)
        mine.header = dict(result.header)
        mine.defaults_list = copy.deepcopy(result.defaults_list)
        return mine

    def start_shallow(self, delegate) -> None:
        self.delegate = copy.copy(delegate)  # initialize_sources replaces the copy's list, never the original's
        self.cache = {}

    repository.load_config, caching.__init__ = load_once, start_shallow
    _active = True
    try:
        yield
    finally:
        _active = False
        repository.load_config, caching.__init__ = load, start
