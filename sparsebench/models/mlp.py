"""Multi-layer perceptron: flatten, then Linear -> activation for each hidden size, then Linear."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from sparsebench.errors import check
from sparsebench.models.kind import MODELS, ModelKind
from sparsebench.network import HiddenBlock, Network, assemble
from sparsebench.regularizers import Regularizer
from sparsebench.schemas import part


@dataclass
class Config:
    name: str = part("mlp")
    hidden: list[int] = part(factory=lambda: [1000, 1000])  # width of each hidden layer

    def __post_init__(self) -> None:
        check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "hidden", list(self.hidden),
              "must list at least one positive layer width")


def check_fits(cfg: Config, shape: tuple[int, int, int]) -> None:
    """Any image shape fits an MLP."""


def build(cfg: Config, regularizer: Regularizer, shape: tuple[int, int, int], num_classes: int) -> Network:
    parts: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    width = math.prod(shape)
    for index, size in enumerate(cfg.hidden):
        weight = regularizer.weight_layer(nn.Linear(width, size), index)
        parts.append((f"hidden{index + 1}", HiddenBlock(weight, regularizer.activation((size,), index))))
        width = size
    return assemble(regularizer.input_layer(shape), parts, nn.Linear(width, num_classes))


MODELS.add("mlp", ModelKind(Config, check_fits, build))
