"""Training speed: sparsebench against a plain PyTorch loop, and each regularizer against none.

    python scripts/bench.py [--root DIR] [--rounds 30] [--only loop,regularizers] [--json out.json]

What is timed: training steps only (forward, loss, penalty, backward, optimizer step, hooks), with the
data already on the device; evaluation is excluded. Each round runs every contender on the same
``--steps`` mini-batches (one epoch of sparsebench's own training loop on a fixed subset of the
training set; the plain loop slices the same tensors), one after the other, so that the load of the
machine hits all of them alike; figures are medians over rounds. Ratios compare medians in one run.

- loop: sparsebench's training loop against a textbook loop (shuffle, slice, forward, loss,
  backward, step) on the same model, batch size and data. Ratio = sparsebench samples/s / plain.
- regularizers: the seconds per step of the same MLP under each regularizer, as a ratio to none.
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

REGULARIZERS = {
    "none": ["regularizer=none"],
    "dropout": ["regularizer=dropout", "regularizer.p=0.5"],
    "dropconnect": ["regularizer=dropconnect", "regularizer.p=0.5"],
    "sparseout": ["regularizer=sparseout", "regularizer.p=0.5", "regularizer.q=1.5"],
    "kwinners": ["regularizer=kwinners", "regularizer.percent_on=[0.1]"],
}


def compose_run(overrides: list[str]):
    with hydra_configs():
        return validate(compose(overrides))


def plain_mlp(sizes: list[int]) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class PlainLoop:
    """The textbook training loop, timed over one pass of the given tensors."""

    def __init__(self, sizes: list[int], lr: float, momentum: float, seed: int):
        torch.manual_seed(seed)
        self.model = plain_mlp(sizes)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum)
        self.generator = torch.Generator().manual_seed(seed)

    def epoch_seconds(self, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
        self.model.to(inputs.device).train()
        started = time.perf_counter()
        order = torch.randperm(len(labels), generator=self.generator).to(labels.device)
        for start in range(0, len(labels), batch_size):
            index = order[start:start + batch_size]
            loss = F.cross_entropy(self.model(inputs[index]), labels[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        if inputs.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - started


class Contender:
    """One sparsebench configuration: its model persists across rounds, as in a real run."""

    def __init__(self, cfg, data, seed: int):
        torch.manual_seed(seed)
        self.cfg, self.data, self.seed = cfg, data, seed
        self.regularizer = build_regularizer(cfg.regularizer)
        self.model = build_model(cfg.model, self.regularizer, tuple(cfg.dataset.shape),
                                 cfg.dataset.num_classes).to(data.train.labels.device)

    def epoch_seconds(self) -> float:
        result = fit(self.model, self.regularizer, self.data, self.cfg.train, seed=self.seed, eval_batch_size=10_000)
        return result.history[-1]["seconds"]


def common_overrides(args) -> list[str]:
    overrides = [f"dataset={args.dataset}", "model=mlp", f"model.hidden={args.hidden}",
                 f"dataset.train_subset={args.steps * args.batch_size}", "dataset.test_subset=1000",
                 f"train.batch_size={args.batch_size}", "train.epochs=1", f"device={args.device}", "progress=off"]
    return overrides + ([f"dataset.root={args.root}"] if args.root else [])


def bench_loop(args) -> dict:
    cfg = compose_run(common_overrides(args))
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    data = load_splits(cfg.dataset, device)
    ours = Contender(cfg, data, seed=0)
    plain = PlainLoop([784, *cfg.model.hidden, cfg.dataset.num_classes], cfg.train.lr, cfg.train.momentum, seed=0)
    ours_times, plain_times = [], []
    for _ in range(args.rounds):
        ours_times.append(ours.epoch_seconds())
        plain_times.append(plain.epoch_seconds(data.train.inputs, data.train.labels, args.batch_size))
    samples = len(data.train)
    ours_rate = samples / statistics.median(ours_times)
    plain_rate = samples / statistics.median(plain_times)
    per_round = sorted(p / o for o, p in zip(ours_times, plain_times))
    return {"model": f"mlp 784-{'-'.join(map(str, cfg.model.hidden))}-{cfg.dataset.num_classes}",
            "dataset": cfg.dataset.name, "batch_size": args.batch_size, "steps_per_round": args.steps,
            "rounds": args.rounds, "sparsebench_samples_per_second": ours_rate,
            "plain_samples_per_second": plain_rate, "ratio": ours_rate / plain_rate,
            "ratio_quartiles": [per_round[len(per_round) // 4], per_round[(3 * len(per_round)) // 4]]}


def bench_regularizers(args) -> dict:
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    contenders, data = {}, None
    for name, overrides in REGULARIZERS.items():
        cfg = compose_run(common_overrides(args) + overrides)
        data = data or load_splits(cfg.dataset, device)
        contenders[name] = Contender(cfg, data, seed=0)
    times = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, contender in contenders.items():
            times[name].append(contender.epoch_seconds() / args.steps)
    step = {name: statistics.median(t) for name, t in times.items()}
    return {"batch_size": args.batch_size, "steps_per_round": args.steps, "rounds": args.rounds,
            "ms_per_step": {k: 1000 * v for k, v in step.items()},
            "ratio_to_none": {k: v / step["none"] for k, v in step.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--root", default=None, help="folder holding the data set's files")
    parser.add_argument("--hidden", default="[1000,1000]")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40, help="mini-batches per contender and round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", default="loop,regularizers", help="sections to run, comma-separated")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    sections = args.only.split(",")

    figures = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}}
    if "loop" in sections:
        figures["loop"] = loop = bench_loop(args)
        print(f"{loop['model']} on {loop['dataset']}, batch {loop['batch_size']}, median of {loop['rounds']} "
              f"rounds of {loop['steps_per_round']} steps:", file=sys.stderr)
        print(f"  sparsebench  {loop['sparsebench_samples_per_second']:9.0f} samples/s", file=sys.stderr)
        print(f"  plain loop   {loop['plain_samples_per_second']:9.0f} samples/s", file=sys.stderr)
        print(f"  ratio        {loop['ratio']:.3f} (per-round quartiles {loop['ratio_quartiles'][0]:.3f}"
              f"-{loop['ratio_quartiles'][1]:.3f})", file=sys.stderr)
    if "regularizers" in sections:
        figures["regularizers"] = regs = bench_regularizers(args)
        print(f"seconds per training step, batch {regs['batch_size']}, median of {regs['rounds']} rounds:",
              file=sys.stderr)
        for name, ms in regs["ms_per_step"].items():
            print(f"  {name:12s} {ms:7.2f} ms  {regs['ratio_to_none'][name]:.3f} x none", file=sys.stderr)
    print(json.dumps(figures, indent=1))
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(figures, stream, indent=1)


if __name__ == "__main__":
    main()
