"""sparsebench's layers in a plain PyTorch loop, without its runner or configs: a sparse MLP (fixed
sparse weights and k-winners activations, Ahmad & Scheinkman 2019) and the same MLP with dropout,
trained side by side on the MNIST subset that ships inside sparsebench (no download).

    python examples/layers_in_a_plain_loop.py [--epochs 3] [--train 5000]
"""

from __future__ import annotations

import argparse
from importlib import resources

import torch
from torch import nn

from sparsebench.data.idx import read_images, read_labels
from sparsebench.nn import (
    Dropout,
    KWinners,
    SparseWeights,
    rezero_weights,
    update_boost_strength,
)

MEAN, STD = 0.1307, 0.3081  # MNIST's pixel mean and standard deviation on the [0, 1] scale


def embedded_mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images as normalised float32 N x 784, labels) of the embedded subset: split 'train' or 't10k'."""
    with resources.as_file(resources.files("sparsebench.data") / "embedded") as folder:
        images = read_images(folder / f"{split}-images-idx3-ubyte.gz")
        labels = read_labels(folder / f"{split}-labels-idx1-ubyte.gz")
    x = (torch.from_numpy(images.copy()).float().div(255) - MEAN) / STD  # the reader gives read-only arrays
    return x.reshape(len(x), -1), torch.from_numpy(labels.copy()).long()


def sparse_mlp(hidden: int = 256) -> nn.Module:
    return nn.Sequential(
        SparseWeights(nn.Linear(784, hidden), sparsity=0.5), KWinners(hidden, percent_on=0.1),
        SparseWeights(nn.Linear(hidden, hidden), sparsity=0.5), KWinners(hidden, percent_on=0.1),
        nn.Linear(hidden, 10))


def dropout_mlp(hidden: int = 256) -> nn.Module:
    return nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), Dropout(0.3),
                         nn.Linear(hidden, hidden), nn.ReLU(), Dropout(0.3), nn.Linear(hidden, 10))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int = 64) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(y)).split(batch_size):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
            model.apply(rezero_weights)  # the optimizer moved the structural zeros of SparseWeights
        model.apply(update_boost_strength)  # k-winners' boosting decays once per epoch


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return 100.0 * (model(x).argmax(dim=1) == y).float().mean().item()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=5000, help="training images used (at most 5000)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    x, y = embedded_mnist("train")
    x, y = x[:args.train], y[:args.train]
    x_test, y_test = embedded_mnist("t10k")
    scores = {}
    for name, model in (("sparse (SparseWeights + KWinners)", sparse_mlp()), ("dropout", dropout_mlp())):
        train(model, x, y, args.epochs)
        scores[name] = accuracy(model, x_test, y_test)
        print(f"{name}: test accuracy {scores[name]:.1f}% on {len(y_test)} images")
        print(model)
    return scores


if __name__ == "__main__":
    main()
