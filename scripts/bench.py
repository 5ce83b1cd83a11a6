"""Training speed of sparsebench next to a plain PyTorch loop on the same model, data and batch size.

    python scripts/bench.py [--dataset mnist] [--root DIR] [--epochs 2] [--repeats 3] [--json out.json]

What is timed: the training steps of whole epochs (forward, loss, backward, optimizer step), data
already on the device in both, evaluation excluded. sparsebench's figure comes from the per-epoch
timing its training loop records; the plain loop is timed the same way, in the same process, the two
alternating so that drifts of the machine hit both alike. The ratio is sparsebench / plain in
samples per second (>= 1: sparsebench is at least as fast).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from sparsebench.config import validate
from sparsebench.data import load_splits
from sparsebench.models import build_model
from sparsebench.regularizers import build_regularizer
from sparsebench.sweep import compose, hydra_configs
from sparsebench.train import fit


def plain_mlp(sizes: list[int]) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def plain_epoch_seconds(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int,
                        lr: float, momentum: float, seed: int) -> float:
    """One epoch of the textbook loop: shuffle, slice, forward, loss, backward, step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    started = time.perf_counter()
    order = torch.randperm(len(labels), generator=generator).to(labels.device)
    for start in range(0, len(labels), batch_size):
        index = order[start:start + batch_size]
        loss = F.cross_entropy(model(inputs[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if inputs.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


def compose_run(overrides: list[str]):
    with hydra_configs():
        return validate(compose(overrides))


def bench_mlp(args) -> dict:
    overrides = [f"dataset={args.dataset}", "model=mlp", f"model.hidden={args.hidden}", "regularizer=none",
                 f"train.batch_size={args.batch_size}", "train.epochs=1", f"device={args.device}", "progress=off"]
    if args.root:
        overrides.append(f"dataset.root={args.root}")
    cfg = compose_run(overrides)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    data = load_splits(cfg.dataset, device)
    sizes = [784, *cfg.model.hidden, cfg.dataset.num_classes]
    ours, plain = [], []
    for repeat in range(args.repeats):
        torch.manual_seed(repeat)
        regularizer = build_regularizer(cfg.regularizer)
        model = build_model(cfg.model, regularizer, tuple(cfg.dataset.shape), cfg.dataset.num_classes).to(device)
        for _ in range(args.epochs):
            result = fit(model, regularizer, data, cfg.train, seed=repeat, eval_batch_size=10_000)
            ours.append(result.history[-1]["seconds"])
        torch.manual_seed(repeat)
        reference = plain_mlp(sizes).to(device)
        for _ in range(args.epochs):
            plain.append(plain_epoch_seconds(reference, data.train.inputs, data.train.labels, args.batch_size,
                                             cfg.train.lr, cfg.train.momentum, repeat))
    samples = len(data.train)
    ours_rate, plain_rate = samples / statistics.median(ours), samples / statistics.median(plain)
    return {"model": "mlp " + "-".join(map(str, sizes)), "dataset": cfg.dataset.name, "train_samples": samples,
            "batch_size": args.batch_size, "epochs_timed": len(ours),
            "sparsebench_samples_per_second": ours_rate, "plain_samples_per_second": plain_rate,
            "ratio": ours_rate / plain_rate, "sparsebench_seconds_per_epoch": statistics.median(ours),
            "plain_seconds_per_epoch": statistics.median(plain)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--root", default=None, help="folder holding the data set's files")
    parser.add_argument("--hidden", default="[1000,1000]")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1, help="epochs timed per repeat and loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()

    figures = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
               "mlp": bench_mlp(args)}
    mlp = figures["mlp"]
    print(json.dumps(figures, indent=1))
    print(f"\n{mlp['model']} on {mlp['dataset']} ({mlp['train_samples']} images), batch {mlp['batch_size']}, "
          f"median of {mlp['epochs_timed']} epochs each:", file=sys.stderr)
    print(f"  sparsebench  {mlp['sparsebench_samples_per_second']:10.0f} samples/s  "
          f"{mlp['sparsebench_seconds_per_epoch']:.2f} s/epoch", file=sys.stderr)
    print(f"  plain loop   {mlp['plain_samples_per_second']:10.0f} samples/s  "
          f"{mlp['plain_seconds_per_epoch']:.2f} s/epoch", file=sys.stderr)
    print(f"  ratio        {mlp['ratio']:.3f}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(figures, stream, indent=1)


if __name__ == "__main__":
    main()
