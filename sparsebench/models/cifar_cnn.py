"""A VGG-style CNN for 32x32 colour images: stages of 3x3 convolutions (optionally batch-normalised),
each stage ending in 2x2 max pooling, then hidden Linear layers, then Linear to the classes."""

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
    name: str = part("cifar_cnn")
    # Output channels of each 3x3 conv, grouped by stage; every stage ends with 2x2 max pooling.
    stages: list[list[int]] = part(factory=lambda: [[64, 64], [128, 128], [256, 256]])
    hidden: list[int] = part(factory=lambda: [512])
    batch_norm: bool = part(True)

    def __post_init__(self) -> None:
        check(len(self.stages) > 0 and all(len(s) > 0 and all(c > 0 for c in s) for s in self.stages),
              "stages", [list(s) for s in self.stages], "must list stages of positive channel counts")
        check(all(h > 0 for h in self.hidden), "hidden", list(self.hidden), "widths must be positive")


def check_fits(cfg: Config, shape: tuple[int, int, int]) -> None:
    size = min(shape[1], shape[2])
    if size >> len(cfg.stages) < 1:
        raise ConfigError("model.stages", [list(s) for s in cfg.stages],
                          f"{len(cfg.stages)} poolings shrink a {shape[1]}x{shape[2]} input to nothing",
                          f"use at most {size.bit_length() - 1} stages for this data set")


def build(cfg: Config, regularizer: Regularizer, shape: tuple[int, int, int], num_classes: int) -> Network:
    parts: list[tuple[str, nn.Module]] = []
    channels, height, width = shape
    index = 0
    for stage_number, stage in enumerate(cfg.stages, start=1):
        for out_channels in stage:
            conv = regularizer.weight_layer(
                nn.Conv2d(channels, out_channels, 3, padding=1, bias=not cfg.batch_norm), index)
            norm = nn.BatchNorm2d(out_channels) if cfg.batch_norm else None
            activation = regularizer.activation((out_channels, height, width), index)
            parts.append((f"hidden{index + 1}", HiddenBlock(conv, activation, norm=norm)))
            channels, index = out_channels, index + 1
        parts.append((f"pool{stage_number}", nn.MaxPool2d(2)))
        height, width = height // 2, width // 2
    parts.append(("flatten", nn.Flatten()))
    features = channels * height * width
    for size in cfg.hidden:
        linear = regularizer.weight_layer(nn.Linear(features, size), index)
        parts.append((f"hidden{index + 1}", HiddenBlock(linear, regularizer.activation((size,), index))))
        features, index = size, index + 1
    return assemble(regularizer.input_layer(shape), parts, nn.Linear(features, num_classes))


MODELS.add("cifar_cnn", ModelKind(Config, check_fits, build))
