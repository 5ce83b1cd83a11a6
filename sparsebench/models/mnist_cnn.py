"""The k-winners paper's MNIST CNN: blocks of Conv(k x k, stride 1, no padding) -> MaxPool -> activation,
then hidden Linear -> activation layers, then Linear to the classes."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sparsebench.errors import ConfigError, check
from sparsebench.models.kind import MODELS, ModelKind
from sparsebench.network import HiddenBlock, Network, assemble
from sparsebench.regularizers import Regularizer
from sparsebench.schemas import part


@dataclass
class Config:
    name: str = part("mnist_cnn")
    channels: list[int] = part(factory=lambda: [30])  # output channels of each conv block
    kernel_size: int = part(5)
    pool_size: int = part(2)
    hidden: list[int] = part(factory=lambda: [1000])  # widths of the hidden linear layers

    def __post_init__(self) -> None:
        check(len(self.channels) > 0 and all(c > 0 for c in self.channels), "channels", list(self.channels),
              "must list at least one positive channel count")
        check(all(h > 0 for h in self.hidden), "hidden", list(self.hidden), "widths must be positive")
        check(self.kernel_size > 0, "kernel_size", self.kernel_size, "must be positive")
        check(self.pool_size > 0, "pool_size", self.pool_size, "must be positive")


def conv_shapes(cfg: Config, shape: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """The (C, H, W) after each conv block."""
    shapes, (_, height, width) = [], shape
    for channels in cfg.channels:
        height = (height - cfg.kernel_size + 1) // cfg.pool_size
        width = (width - cfg.kernel_size + 1) // cfg.pool_size
        shapes.append((channels, height, width))
    return shapes


def check_fits(cfg: Config, shape: tuple[int, int, int]) -> None:
    for index, (_, height, width) in enumerate(conv_shapes(cfg, shape)):
        if height < 1 or width < 1:
            raise ConfigError(
                "model.channels", list(cfg.channels),
                f"{index + 1} conv blocks of {cfg.kernel_size}x{cfg.kernel_size} conv and {cfg.pool_size}x pooling "
                f"shrink a {shape[1]}x{shape[2]} input to nothing",
                f"use at most {index} conv blocks for this data set")


def build(cfg: Config, regularizer: Regularizer, shape: tuple[int, int, int], num_classes: int) -> Network:
    parts: list[tuple[str, nn.Module]] = []
    in_channels, index = shape[0], 0
    for out_shape in conv_shapes(cfg, shape):
        conv = regularizer.weight_layer(nn.Conv2d(in_channels, out_shape[0], cfg.kernel_size), index)
        block = HiddenBlock(conv, regularizer.activation(out_shape, index), pool=nn.MaxPool2d(cfg.pool_size))
        parts.append((f"hidden{index + 1}", block))
        in_channels, index = out_shape[0], index + 1
    parts.append(("flatten", nn.Flatten()))
    width = out_shape[0] * out_shape[1] * out_shape[2]
    for size in cfg.hidden:
        linear = regularizer.weight_layer(nn.Linear(width, size), index)
        parts.append((f"hidden{index + 1}", HiddenBlock(linear, regularizer.activation((size,), index))))
        width, index = size, index + 1
    return assemble(regularizer.input_layer(shape), parts, nn.Linear(width, num_classes))


MODELS.add("mnist_cnn", ModelKind(Config, check_fits, build))
