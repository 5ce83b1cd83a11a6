"""sparsebench's layers: dropout and sparsity mechanisms usable in any PyTorch model.

Each mechanism is a stateless function (the math, every piece of state an argument) and a thin
``nn.Module`` owning the state in registered buffers, in the style of numenta's nupic.torch, whose
``KWinners``, ``KWinners2d``, ``SparseWeights`` and ``SparseWeights2d`` these modules replace.

* :class:`Sparseout` (Khan & Stavness 2019) and :func:`sparseout`.
* :class:`KWinners`, :class:`KWinners2d` (Ahmad & Scheinkman 2019) and :func:`kwinners`,
  :func:`kwinners2d`, :func:`boost_activations`, :func:`update_duty_cycle_`,
  :func:`update_boost_strength`.
* :class:`DropConnectLinear`, :class:`DropConnectConv2d` (Wan et al. 2013) and
  :func:`dropconnect_linear`, :func:`dropconnect_conv2d`, :func:`gaussian_moments`.
* :class:`SparseWeights`, :class:`SparseWeights2d` (Ahmad & Scheinkman 2019) and
  :func:`random_connectivity_mask`, :func:`rezero_weights`, :func:`normalize_sparse_weights`.
* :class:`Dropout`, :class:`Dropout2d`: inverted dropout with cheap masks (or PyTorch's own) and
  :func:`dropout`.
* :func:`keep_mask`: cheap Bernoulli masks from 16 random bits per element.

A layer that acts randomly in training mode and deterministically in evaluation mode says so with the
class attribute ``stochastic = True`` (:class:`Dropout`, :class:`Dropout2d`, :class:`Sparseout`, the
DropConnect layers), so that code sampling a trained model, such as evaluation passes with only the
random layers in training mode, asks the layer rather than keeping a list of kinds. k-winners and
sparse weights are deterministic in both modes.
"""

from sparsebench.nn.dropconnect import (
    DropConnectConv2d,
    DropConnectLinear,
    dropconnect_conv2d,
    dropconnect_linear,
    gaussian_average,
    gaussian_moments,
)
from sparsebench.nn.dropout import Dropout, Dropout2d, dropout
from sparsebench.nn.kwinners import (
    KWinners,
    KWinners2d,
    KWinnersBase,
    boost_activations,
    kwinners,
    kwinners2d,
    update_boost_strength,
    update_duty_cycle_,
)
from sparsebench.nn.masks import keep_mask, keep_probability
from sparsebench.nn.sparse_weights import (
    SparseWeights,
    SparseWeights2d,
    SparseWeightsBase,
    normalize_sparse_weights,
    random_connectivity_mask,
    rezero_weights,
)
from sparsebench.nn.sparseout import Sparseout, sparseout

__all__ = [
    "DropConnectConv2d",
    "DropConnectLinear",
    "Dropout",
    "Dropout2d",
    "KWinners",
    "KWinners2d",
    "KWinnersBase",
    "SparseWeights",
    "SparseWeights2d",
    "SparseWeightsBase",
    "Sparseout",
    "boost_activations",
    "dropconnect_conv2d",
    "dropconnect_linear",
    "dropout",
    "gaussian_average",
    "gaussian_moments",
    "keep_mask",
    "keep_probability",
    "kwinners",
    "kwinners2d",
    "normalize_sparse_weights",
    "random_connectivity_mask",
    "rezero_weights",
    "sparseout",
    "update_boost_strength",
    "update_duty_cycle_",
]
