"""No regularization: the baseline every claim compares against."""

from dataclasses import dataclass

from sparsebench.regularizers.base import REGULARIZERS, Regularizer, RegularizerConfig
from sparsebench.schemas import part


@dataclass
class NoneConfig(RegularizerConfig):
    name: str = part("none")


@REGULARIZERS.register("none")
class NoRegularization(Regularizer):
    """ReLU after every hidden layer, nothing else."""

    Config = NoneConfig
