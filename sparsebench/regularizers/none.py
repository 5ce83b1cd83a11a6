"""No regularization: the baseline every claim compares against."""

from dataclasses import dataclass

from sparsebench.regularizers.base import Regularizer, RegularizerConfig


@dataclass
class NoneConfig(RegularizerConfig):
    name: str = "none"


class NoRegularization(Regularizer):
    """ReLU after every hidden layer, nothing else."""

    Config = NoneConfig
