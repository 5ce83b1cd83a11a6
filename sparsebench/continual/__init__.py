"""Task sequences (continual learning): permuted and split data sets trained one task after another
as one run, and what that measures (the accuracy matrix, forgetting, backward and forward transfer,
the share of weights each task changed).

``tasks``: the schemas of ``conf/continual/`` and each task's data, made on the device from the data
set's splits. ``sequence``: the loop over tasks, one ``train.fit`` per task. ``metrics``: the
numbers read from the accuracy matrix and the weight changes.
"""

from __future__ import annotations

from sparsebench.continual.tasks import (
    SEQUENCES,
    PermutedConfig,
    SequenceConfig,
    SplitConfig,
    TaskData,
)

__all__ = ["SEQUENCES", "PermutedConfig", "SequenceConfig", "SplitConfig", "TaskData"]
