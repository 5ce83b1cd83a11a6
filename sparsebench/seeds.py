"""Every seed a run uses, derived here from the seeds of its config, each with what it seeds.

A run has four seeds of its own: ``seed`` (the model: initial weights, batch order, training masks),
``dataset.split_seed`` (which images are held out or kept), ``continual.seed`` (the tasks) and
``eval.noise_seed`` (the randomness of measurements). The last three stay apart from ``seed`` on purpose:
every run of a sweep over seeds then sees the same data, tasks and corrupted images; ``continual.seed:
null`` instead derives the tasks from ``seed``, so each model seed draws tasks of its own. Every random
stream is seeded by one of the functions below, so two streams never share a seed by accident and a
new one is added here, beside the others. They return the integers the code has always used: changing
one changes the numbers of every recorded run.

sparsebench.nn derives no seed from these: its layers take a seed or a generator from the caller
(``DropConnectLinear(seed=...)``, ``SparseWeights(generator=...)``), so that it imports torch alone.
"""

from __future__ import annotations

import numpy as np

# Layer streams are spread this far apart (the 1000th prime), far beyond the few streams a fit takes.
LAYER_STRIDE = 7919
# Noise kinds' streams are spread this far apart, more than there will ever be kinds.
NOISE_KIND_STRIDE = 1000
# Tags of the streams derived by hashing (:func:`_hashed`), one per stream, never reused.
PERMUTATIONS_TAG = 1
RANDOM_PRUNING_TAG = 2


def _hashed(seed: int, tag: int) -> int:
    """A seed for stream ``tag`` of run seed ``seed``, by numpy's SeedSequence (which hashes its entropy):
    the streams above seed with ``seed`` plus small offsets, and a hash keeps a new stream clear of all of
    them for every run seed, where another offset could land on one of them for some seed (a stream
    seeded as the initial weights' would draw the same numbers: a random mask made from them would prune
    by initial magnitude)."""
    return int(np.random.SeedSequence([seed, tag]).generate_state(1)[0])


def model(seed: int) -> int:
    """The global generator when a run starts: the model's initial weights, then the training masks of
    dropout-like layers (which draw from the global generator)."""
    return seed


def data_order(seed: int) -> int:
    """The order of the training batches of a fit (``fit(seed=...)``), on the CPU."""
    return seed


def augmentation(seed: int) -> int:
    """The random crops and flips of a fit's training batches, on the data's device: a stream apart from
    the batch order's, the next seed after it."""
    return seed + 1


def task(seed: int, index: int) -> int:
    """The ``seed`` of the fit of task ``index`` (from 0) of a task sequence. A fit takes two streams
    (:func:`data_order` and :func:`augmentation`: seed and seed + 1), so the tasks step by two and no
    two tasks share a stream; the first task's fit is seeded as a plain run's."""
    return seed + 2 * index


def finetune_subset(seed: int) -> int:
    """Which training images a fine-tune of a fraction of an epoch after pruning passes over; the
    fine-tune's own fit takes the same ``seed`` (as the run's fit did)."""
    return seed


def weight_mask(base: int, index: int) -> int:
    """The fixed sparse connectivity (``SparseWeights``) of hidden layer ``index`` (from 0). ``base`` is
    the seed of the global generator (``torch.initial_seed()``; the run's seed, set by :func:`model`
    before the model is built). Each layer's mask comes from a generator of its own, so drawing it does
    not shift the initial weights of the layers after it; ``index + 1`` keeps layer 0's stream off
    ``base`` itself."""
    return base + LAYER_STRIDE * (index + 1)


def gaussian_draws(index: int) -> int:
    """The Gaussian draws of DropConnect's moment-matching inference in hidden layer ``index`` (from 0):
    the layer index alone, so evaluation is the same for every run seed and each layer draws apart
    from the others (the layer seeds a fresh generator with it at every call)."""
    return index


def split(split_seed: int) -> int:
    """The held-out validation images and the random training and test subsets of a data set."""
    return split_seed


def permutations(continual_seed: int | None, run_seed: int) -> int:
    """The pixel permutations of a permuted task sequence, drawn in task order: ``continual.seed`` when
    set (every model of a sweep learns the same tasks), else derived from the run's seed (each model seed
    learns tasks of its own, so that intervals over seeds hold the variance of the tasks drawn too)."""
    return continual_seed if continual_seed is not None else _hashed(run_seed, PERMUTATIONS_TAG)


def random_pruning(seed: int) -> int:
    """The global generator while random pruning (``prune.compare: [random]``) draws its masks; the
    run's own random state is saved and restored around it. Every fraction draws from this seed anew, so
    the weights pruned at one fraction are pruned at every larger one too, as by magnitude."""
    return _hashed(seed, RANDOM_PRUNING_TAG)


def noise(noise_seed: int, kind_index: int) -> int:
    """The corrupted test images of noise kind number ``kind_index`` (``NoiseKind.index`` in ``metrics.noise``):
    each kind has a stream of its own, so adding or dropping a kind leaves the others' images alone."""
    return noise_seed * NOISE_KIND_STRIDE + kind_index


def dropout_on(noise_seed: int) -> int:
    """The global generator during the dropout-on evaluation passes (stochastic layers in training mode);
    the run's own random state is saved and restored around them."""
    return noise_seed
