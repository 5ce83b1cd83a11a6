"""Continual learning: a run that trains on the tasks of a sequence one after another, and what that
measures (the accuracy matrix, forgetting, backward and forward transfer, the share of weights each task
changed).

The sequences themselves (the schemas of ``conf/continual/`` and each task's data) are cut from a data set
in ``sparsebench.data.tasks``. ``sequence``: the loop over tasks, one ``train.fit`` per task. ``metrics``:
the numbers read from the accuracy matrix and the weight changes.
"""
