"""Speed figures: sparsebench against plain PyTorch loops, regularizers against none, achieved FLOP/s
against the machine's matmul peak, the smoke claims' wall time, and a parallel sweep against a
sequential one.

    python scripts/bench.py [--root DIR] [--rounds 30]
                            [--only loop,cnn,regularizers,flops,variants,memory,plan,claims,sweep,dropconnect,sequence]
                            [--json out.json]

What is timed: training steps only (forward, loss, penalty, backward, optimizer step, hooks), with the
data already on the device; evaluation is excluded. Each round runs every contender on the same
``--steps`` mini-batches (one epoch of sparsebench's own training loop on a fixed subset of the
training set; the plain loop slices the same tensors), one after the other, so that the load of the
machine hits all of them alike; figures are medians over rounds. Ratios compare medians in one run.

- loop: sparsebench's training loop against a textbook loop (shuffle, slice, forward, loss,
  backward, step) on the same model, batch size and data. Ratio = sparsebench samples/s / plain.
- cnn: the same for the MNIST CNN (Dense CNN-2 of the k-winners paper, batch 64); the plain loop
  uses PyTorch's default memory format, sparsebench its channels_last default for conv nets.
- regularizers: the seconds per step of the same MLP under each regularizer, as a ratio to none.
- flops: the training FLOP/s of the MLP and the CNN in sparsebench's loop (FLOPs of one step counted by
  torch.utils.flop_counter), as a fraction of the matmul peak measured here in the same rounds
  (float32 torch.mm of 2048 x 2048 matrices, best of 3, same threads).
- variants: the MLP and the CNN in sparsebench's loop in float32, with bf16 autocast
  (``train.precision=bf16``), with ``torch.compile`` (``train.compile=true``) and with both, and the
  CNN without channels_last, as ratios to float32 eager; the first two epochs of each are not timed
  (compilation). On by default on a GPU; on the CPU with ``--only variants``.
- claims: the wall time of ``sparsebench-claims profile=smoke`` in a fresh results folder (38 runs).
- plan: the wall time and peak memory of ``sparsebench-claims profile=paper run=false`` in an empty results
  folder, a first plan (a fresh user cache) and the plan kept (the same cache, another empty folder),
  ``--plan-repeats`` of each; ``--only plan`` (not a default section; ``--root``: the folder holding each data
  set's folder).
- memory: each paper protocol's first epoch (``sparsebench experiment=<protocol> train.epochs=1``, seed 0,
  on the data given by --root; measurements after training left out) and one whole run of
  ``--whole-run`` (default the k-winners paper's Sparse CNN-2, the first-epoch-at-batch-4 protocol, as
  written): the wall time and the peak resident memory of each command's process (getrusage of the
  child). Runs in a fresh results folder, one at a time; ``--only memory`` (not a default section).
- sweep: 8 small runs (the default MLP, 2 epochs on the embedded data, every measurement) as one
  ``sparsebench -m`` sweep: one after another, with ``hydra/launcher=joblib`` and with the
  ``hydra/launcher=local`` preset (forked joblib workers, one per core); wall times of the whole
  commands in fresh results folders, best of two.
- sequence: a permuted task's copy of the training, validation and test splits (raw images and model
  inputs), as a task sequence makes it after every task, with NumPy's take (the code's way on the CPU)
  against torch.gather, interleaved, in CPU time of one thread; ``--only sequence``.
- dropconnect: what the DropConnect paper's per-example masks cost: the training step of its
  784-800-800-10 MLP at the experiment's batch size (``experiment=dropconnect_paper_mlp``) with
  ``regularizer=dropconnect_paper`` (one mask per example) against the same with
  ``regularizer.mask=batch``, interleaved in one process over ``--dropconnect-steps`` steps and
  ``--dropconnect-rounds`` rounds; the same ratio in a bare loop of the same layers on one thread, timed
  in CPU time of the thread (``time.thread_time``: robust to a loaded host, where wall-clock figures
  of two-thread steps swing 2-3x between rounds); and the peak
  resident memory of each, from a fresh child process that trains as many steps (ru_maxrss, beside
  its resident memory before the first step); then Gaussian inference of the per-example model over
  ``--gaussian-images`` validation images with today's ``gaussian_average`` and the one before issue 23
  (interleaved, 2 rounds). Only with ``--only dropconnect``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sparsebench.configure import validate
from sparsebench.data import load_splits
from sparsebench.models import build_model, place
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


def plain_cnn2() -> nn.Module:
    """Dense CNN-2 of the k-winners paper, written out as a textbook model."""
    return nn.Sequential(nn.Conv2d(1, 30, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(30, 30, 5), nn.MaxPool2d(2),
                         nn.ReLU(), nn.Flatten(), nn.Linear(480, 1000), nn.ReLU(), nn.Linear(1000, 10))


class PlainLoop:
    """The textbook training loop, timed over one pass of the given tensors."""

    def __init__(self, model: nn.Module, lr: float, momentum: float, seed: int):
        torch.manual_seed(seed)
        self.model = model
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
        self.model = place(build_model(cfg.model, self.regularizer, tuple(cfg.dataset.shape), cfg.dataset.num_classes),
                           data.train.labels.device, cfg.train.channels_last)
        if cfg.train.compile:  # as the runner does; the first epochs compile and are not timed
            self.model = torch.compile(self.model)

    def epoch_seconds(self) -> float:
        result = fit(self.model, self.regularizer, self.data, self.cfg.train, seed=self.seed, eval_batch_size=10_000)
        return result.history[-1]["seconds"]


def common_overrides(args, batch_size: int | None = None) -> list[str]:
    batch_size = batch_size or args.batch_size
    overrides = [f"dataset={args.dataset}", "model=mlp", f"model.hidden={args.hidden}",
                 f"dataset.train_subset={args.steps * batch_size}", "dataset.test_subset=1000",
                 f"train.batch_size={batch_size}", "train.epochs=1", f"device={args.device}", "progress=off"]
    return overrides + ([f"dataset.root={args.root}"] if args.root else [])


CNN2 = ["model=mnist_cnn", "model.channels=[30,30]", "model.hidden=[1000]"]


def _device(args) -> torch.device:
    return torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")


def loop_against_plain(args, overrides: list[str], plain_model: nn.Module, batch_size: int) -> dict:
    cfg = compose_run(common_overrides(args, batch_size) + overrides)
    data = load_splits(cfg.dataset, _device(args))
    ours = Contender(cfg, data, seed=0)
    plain = PlainLoop(plain_model, cfg.train.lr, cfg.train.momentum, seed=0)
    ours_times, plain_times = [], []
    for _ in range(args.rounds):
        ours_times.append(ours.epoch_seconds())
        plain_times.append(plain.epoch_seconds(data.train.inputs, data.train.labels, batch_size))
    samples = len(data.train)
    ours_rate = samples / statistics.median(ours_times)
    plain_rate = samples / statistics.median(plain_times)
    per_round = sorted(p / o for o, p in zip(ours_times, plain_times))
    return {"dataset": cfg.dataset.name, "batch_size": batch_size, "steps_per_round": args.steps,
            "rounds": args.rounds, "sparsebench_samples_per_second": ours_rate,
            "plain_samples_per_second": plain_rate, "ratio": ours_rate / plain_rate,
            "ratio_quartiles": [per_round[len(per_round) // 4], per_round[(3 * len(per_round)) // 4]]}


def bench_loop(args) -> dict:
    sizes = [784, *json.loads(args.hidden), 10]
    return {"model": "mlp " + "-".join(map(str, sizes)),
            **loop_against_plain(args, [], plain_mlp(sizes), args.batch_size)}


def bench_cnn(args) -> dict:
    return {"model": "mnist_cnn 30-30-1000 (Dense CNN-2)", **loop_against_plain(args, CNN2, plain_cnn2(), 64)}


def matmul_seconds(a: torch.Tensor, b: torch.Tensor, repeats: int = 3) -> float:
    """Best time of float32 torch.mm of ``a`` and ``b``."""
    torch.mm(a, b)
    return min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def step_flops(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> int:
    """FLOPs of one training step's forward and backward, as PyTorch's flop counter counts them."""
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(inputs), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def bench_flops(args) -> dict:
    """Training FLOP/s against the matmul peak, both measured in every round (the load of a shared
    machine drifts over minutes; a peak taken at another moment would skew the fraction)."""
    size = 2048
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = {"matmul": f"float32 torch.mm {size}x{size}, best of 3 per round", "threads": torch.get_num_threads()}
    for name, overrides, batch_size in (("mlp", [], args.batch_size), ("cnn", CNN2, 64)):
        cfg = compose_run(common_overrides(args, batch_size) + overrides)
        data = load_splits(cfg.dataset, _device(args))
        contender = Contender(cfg, data, seed=0)
        flops = step_flops(contender.model, data.train.inputs[:batch_size], data.train.labels[:batch_size])
        peaks, rates = [], []
        for _ in range(args.rounds):
            peaks.append(2 * size ** 3 / matmul_seconds(a, b))
            contender.epoch_seconds()  # untimed: the large product leaves the caches cold for a while
            rates.append(flops * args.steps / contender.epoch_seconds())
        fractions = sorted(r / p for r, p in zip(rates, peaks))
        out[name] = {"flops_per_step": flops, "flops_per_second": statistics.median(rates),
                     "matmul_peak_flops_per_second": statistics.median(peaks),
                     "fraction_of_peak": statistics.median(fractions),
                     "fraction_quartiles": [fractions[len(fractions) // 4], fractions[(3 * len(fractions)) // 4]]}
    return out


def _wall(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-1000:]}")
    return time.perf_counter() - started


def bench_claims(args) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        seconds = _wall([sys.executable, "-m", "sparsebench.claims.cli", "profile=smoke", f"results_dir={folder}"],
                        Path(folder))
    return {"command": "sparsebench-claims profile=smoke", "wall_seconds": seconds}


def bench_sequence(args) -> dict:
    """A permuted task's copy of every split, as a task sequence makes it (``data.tasks.permute``: NumPy's take
    on the CPU) against torch.gather, the way before, interleaved over ``--rounds``, in CPU time of this
    thread (robust to a loaded host); each contender checked to give the same tensors."""
    from sparsebench.data.tasks import permutations, permute

    cfg = compose_run([f"dataset={args.dataset}", "dataset.val_size=10000", "continual=permuted", "threads=1"]
                      + ([f"dataset.root={args.root}"] if args.root else []))
    torch.set_num_threads(1)
    data = load_splits(cfg.dataset, torch.device("cpu"))
    order = permutations(2, data.train.inputs[0].numel(), seed=0)[1]

    def gathered(images):
        def moved(tensor):
            rows = tensor.reshape(-1, order.numel())
            return torch.gather(rows, 1, order.expand(len(rows), -1)).reshape(tensor.shape)
        return moved(images.images), moved(images.inputs)

    splits = {"train": data.train, "validation": data.val, "test": data.test}
    seconds = {name: {"take": [], "gather": []} for name in splits}
    for _ in range(args.rounds):
        for name, images in splits.items():
            for contender, work in (("take", lambda: permute(images, order)),
                                    ("gather", lambda: gathered(images))):
                started = time.thread_time()
                out = work()
                seconds[name][contender].append(time.thread_time() - started)
            if len(seconds[name]["take"]) == 1:
                new, old = permute(images, order), gathered(images)
                assert torch.equal(new.images, old[0]) and torch.equal(new.inputs, old[1]), "the copies differ"
            del out
    median = {name: {c: statistics.median(v) for c, v in by.items()} for name, by in seconds.items()}
    return {"images": {name: len(images) for name, images in splits.items()}, "rounds": args.rounds,
            "cpu_seconds": median, "ratio": {name: m["gather"] / m["take"] for name, m in median.items()}}


def bench_sweep(args) -> dict:
    """8 runs of the default MLP on the embedded data (2 epochs, every measurement), as one sweep:
    one after another, with joblib's default workers, and with the ``local`` preset (forked joblib
    workers); each command twice in fresh folders, the faster time kept."""
    sweep = ["-m", "dataset=embedded", "train.epochs=2", "seed=range(8)", "progress=off"]
    launchers = {"sequential": [], "joblib": ["hydra/launcher=joblib"], "local": ["hydra/launcher=local"]}
    times = {}
    for name, launcher in launchers.items():
        walls = []
        for _ in range(2):
            with tempfile.TemporaryDirectory() as folder:
                walls.append(_wall([sys.executable, "-m", "sparsebench", *sweep, *launcher, f"results_dir={folder}"],
                                   Path(folder)))
        times[name] = min(walls)
    return {"runs": 8, "cpu_count": os.cpu_count(), "wall_seconds": times,
            "speedup": {name: times["sequential"] / t for name, t in times.items() if name != "sequential"}}


def _peak(command: list[str], cwd: Path, env: dict | None = None, allowed: tuple[int, ...] = (0,)
          ) -> tuple[float, int]:
    """(wall seconds, peak resident memory in bytes) of ``command`` run as a child process, which must end
    with a status in ``allowed``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    error = process.stderr.read()
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) not in allowed:
        raise RuntimeError(f"{' '.join(command)} failed: {error[-1000:]}")
    return seconds, usage.ru_maxrss * 1024  # Linux reports kilobytes


def bench_plan(args) -> dict:
    """The paper profile's plan, ``sparsebench-claims profile=paper run=false`` in an empty results folder:
    a first plan (an empty user cache, as after an install or any change to the code or configs), then the
    same in another empty folder with the plan kept; ``--plan-repeats`` times, each pair in a fresh cache.
    Exit status 1 is expected where a data set is missing (the CIFAR-10 claims are then reported not run)."""
    # A fresh user cache moves the default data folder too (<user cache>/sparsebench): the data are looked for
    # where they are now. --root here is the folder that holds each data set's folder (mnist/, cifar10/).
    data = args.root or os.environ.get("SPARSEBENCH_DATA") or \
        str(Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "sparsebench")
    first, kept = [], []
    for _ in range(args.plan_repeats):
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "XDG_CACHE_HOME": f"{folder}/cache", "SPARSEBENCH_DATA": data}
            command = [sys.executable, "-m", "sparsebench.claims.cli", "profile=paper", "run=false"]
            first.append(_peak([*command, f"results_dir={folder}/first"], Path(folder), env, allowed=(0, 1)))
            kept.append(_peak([*command, f"results_dir={folder}/kept"], Path(folder), env, allowed=(0, 1)))
    return {name: {"wall_seconds": [round(s, 2) for s, _ in runs],
                   "median_seconds": statistics.median(s for s, _ in runs),
                   "peak_bytes": max(b for _, b in runs)} for name, runs in (("first", first), ("kept", kept))}


def paper_protocol_experiments() -> list[str]:
    from sparsebench.claims.catalogue import load_catalogue

    protocols = [c for c in load_catalogue().values() if c.kind == "protocol"]
    return list(dict.fromkeys(e for claim in protocols for e in claim.experiments_for("paper")
                              if not e.endswith("cifar")))


def bench_memory(args) -> dict:
    """First epoch of every paper protocol's experiment, and one whole run, with peak memory."""
    root = [f"dataset.root={args.root}"] if args.root else []
    quiet = ["seed=0", "progress=off", "prune=none", "eval.noise=[]", "eval.train_mode_passes=0", "eval.best_test=false"]
    figures = {"first_epoch": {}, "whole_run": {}}
    for experiment in paper_protocol_experiments():
        with tempfile.TemporaryDirectory() as folder:
            seconds, peak = _peak([sys.executable, "-m", "sparsebench", f"experiment={experiment}", "train.epochs=1",
                                   *quiet, *root, f"results_dir={folder}"], Path(folder))
        figures["first_epoch"][experiment] = {"wall_seconds": seconds, "peak_rss_bytes": peak}
        print(f"  {experiment:30s} first epoch {seconds:7.1f} s, peak {peak / 2**30:5.2f} GiB", file=sys.stderr)
    if args.whole_run:
        with tempfile.TemporaryDirectory() as folder:
            seconds, peak = _peak([sys.executable, "-m", "sparsebench", f"experiment={args.whole_run}", "seed=0",
                                   "progress=off", *root, f"results_dir={folder}"], Path(folder))
        figures["whole_run"][args.whole_run] = {"wall_seconds": seconds, "peak_rss_bytes": peak}
        print(f"  {args.whole_run:30s} whole run   {seconds:7.1f} s, peak {peak / 2**30:5.2f} GiB", file=sys.stderr)
    return figures


def bench_regularizers(args) -> dict:
    device = _device(args)
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


def _dropconnect_overrides(args, mask: str, inference: str = "mean") -> list[str]:
    """The paper's experiment with ``mask``; ``inference=mean`` by default: training is the same, and the
    per-epoch evaluations (validation for early stopping) then skip Gaussian inference, timed apart."""
    overrides = ["experiment=dropconnect_paper_mlp", f"dataset={args.dataset}", "regularizer=dropconnect_paper",
                 f"regularizer.mask={mask}", f"regularizer.inference={inference}", "dataset.test_subset=1000",
                 "train.epochs=1", "eval.early_stop=false", f"device={args.device}", "progress=off"]
    batch_size = compose_run(overrides + ([f"dataset.root={args.root}"] if args.root else [])).train.batch_size
    overrides.append(f"dataset.train_subset={args.dropconnect_steps * batch_size}")
    return overrides + ([f"dataset.root={args.root}"] if args.root else [])


def _status_mib(field: str) -> float | None:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def dropconnect_peak_memory(args, mask: str) -> dict:
    """In this (fresh) process: resident memory once the data and model are loaded, then the peak
    resident memory over one epoch of ``--dropconnect-steps`` steps of the paper's MLP with ``mask``.
    Loading the data peaks higher than it leaves behind, so the peak is reset before training where
    Linux allows it (``5`` written to /proc/self/clear_refs); elsewhere it is the process's peak."""
    import resource

    cfg = compose_run(_dropconnect_overrides(args, mask))
    data = load_splits(cfg.dataset, _device(args))
    contender = Contender(cfg, data, seed=0)
    before = _status_mib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    contender.epoch_seconds()
    peak = _status_mib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mask": mask, "rss_before_training_mib": before, "peak_rss_mib": peak,
            "peak_covers": "training only" if reset else "the whole process"}


def _gaussian_average_before(mean, var, samples, activation=None, generator=None):
    """sparsebench.nn.dropconnect.gaussian_average before issue 23 (blocks of 2**24 draws), for the
    before/after figure: the same noise and average, computed over memory-sized blocks."""
    noise = torch.randn((samples, 1, *mean.shape[1:]), dtype=mean.dtype, device=mean.device, generator=generator)
    sd = var.clamp_min(0.0).sqrt()
    per_chunk = max(1, (1 << 24) // max(1, mean.numel()))
    total = None
    for start in range(0, samples, per_chunk):
        draws = torch.addcmul(mean, noise[start:start + per_chunk], sd)
        if activation is not None:
            count = draws.shape[0]
            draws = activation(draws.flatten(0, 1))
            draws = draws.unflatten(0, (count, draws.shape[0] // count))
        part = draws.sum(dim=0)
        total = part if total is None else total.add_(part)
    return total / samples


def gaussian_inference_seconds(model, inputs: torch.Tensor, rounds: int) -> dict:
    """Seconds of Gaussian inference (the trained model in evaluation mode, batches of 10,000) over
    ``inputs``, with today's gaussian_average and with the one before, interleaved; the outputs agree."""
    import sparsebench.nn.dropconnect as dc

    current = dc.gaussian_average
    times = {"before": [], "after": []}
    outputs = {}
    model.eval()
    try:
        for _ in range(rounds):
            for name, function in (("before", _gaussian_average_before), ("after", current)):
                dc.gaussian_average = function
                started = time.perf_counter()
                with torch.no_grad():
                    outputs[name] = torch.cat([model(inputs[i:i + 10_000]) for i in range(0, len(inputs), 10_000)])
                times[name].append(time.perf_counter() - started)
    finally:
        dc.gaussian_average = current
        model.train()
    seconds = {name: statistics.median(t) for name, t in times.items()}
    return {"images": len(inputs), "rounds": rounds, "seconds": seconds,
            "speedup": seconds["before"] / seconds["after"],
            "max_abs_difference": (outputs["before"] - outputs["after"]).abs().max().item()}


def dropconnect_bare_loop(rounds: int, steps: int = 10) -> dict:
    """CPU seconds of this thread per training step of the paper's MLP (784-800-800-10, batch 128, SGD
    with momentum, random data) with one mask per batch and one per example, on one thread, in
    ``rounds`` interleaved rounds of ``steps`` steps."""
    from sparsebench.nn import DropConnectLinear

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    inputs, labels = torch.rand(128 * steps, 784), torch.randint(0, 10, (128 * steps,))
    nets, optimizers = {}, {}
    for mask in ("batch", "sample"):
        torch.manual_seed(0)
        nets[mask] = nn.Sequential(DropConnectLinear(784, 800, p=0.5, mask=mask), nn.ReLU(),
                                   DropConnectLinear(800, 800, p=0.5, mask=mask), nn.ReLU(), nn.Linear(800, 10))
        optimizers[mask] = torch.optim.SGD(nets[mask].parameters(), lr=0.01, momentum=0.9)

    def cpu_seconds_per_step(mask: str) -> float:
        started = time.thread_time()
        for i in range(steps):
            rows = slice(128 * i, 128 * (i + 1))
            loss = F.cross_entropy(nets[mask](inputs[rows]), labels[rows])
            optimizers[mask].zero_grad()
            loss.backward()
            optimizers[mask].step()
        return (time.thread_time() - started) / steps

    try:
        for mask in nets:  # untimed: the kernel is built or loaded on first use
            cpu_seconds_per_step(mask)
        times = {mask: [] for mask in nets}
        for _ in range(rounds):
            for mask in nets:
                times[mask].append(cpu_seconds_per_step(mask))
    finally:
        torch.set_num_threads(threads)
    step = {mask: statistics.median(t) for mask, t in times.items()}
    per_round = sorted(s / b for b, s in zip(times["batch"], times["sample"]))
    return {"cpu_seconds_per_step": step, "ratio_sample_to_batch": step["sample"] / step["batch"],
            "ratio_quartiles": [per_round[len(per_round) // 4], per_round[(3 * len(per_round)) // 4]],
            "rounds": rounds, "steps_per_round": steps}


def bench_dropconnect(args) -> dict:
    device = _device(args)
    contenders, data = {}, None
    for mask in ("batch", "sample"):
        cfg = compose_run(_dropconnect_overrides(args, mask))
        data = data or load_splits(cfg.dataset, device)
        contenders[mask] = Contender(cfg, data, seed=0)
    batch_size = cfg.train.batch_size
    contenders["sample"].epoch_seconds()  # untimed: builds the kernel on first use
    times = {mask: [] for mask in contenders}
    for _ in range(args.dropconnect_rounds):
        for mask, contender in contenders.items():
            times[mask].append(contender.epoch_seconds() / args.dropconnect_steps)
    step = {mask: statistics.median(t) for mask, t in times.items()}
    per_round = sorted(s / b for b, s in zip(times["batch"], times["sample"]))
    steps_per_epoch = -(-60_000 // batch_size)
    memory = {}
    for mask in contenders:  # a fresh process each: ru_maxrss is a process's peak
        command = [sys.executable, __file__, "--dropconnect-peak", mask, "--dataset", args.dataset,
                   "--dropconnect-steps", str(args.dropconnect_steps), "--device", args.device]
        done = subprocess.run(command + (["--root", args.root] if args.root else []), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-1000:]}")
        memory[mask] = json.loads(done.stdout)
    gaussian_model = Contender(compose_run(_dropconnect_overrides(args, "sample", "gaussian")), data, seed=0).model
    bare = dropconnect_bare_loop(max(args.dropconnect_rounds, 15))
    images = (data.val if data.val is not None else data.test).inputs[:args.gaussian_images]
    gaussian = gaussian_inference_seconds(gaussian_model, images, 2)
    return {"model": "mlp 784-800-800-10", "batch_size": batch_size, "steps_per_round": args.dropconnect_steps,
            "rounds": args.dropconnect_rounds, "seconds_per_step": step,
            "ratio_sample_to_batch": step["sample"] / step["batch"],
            "ratio_quartiles": [per_round[len(per_round) // 4], per_round[(3 * len(per_round)) // 4]],
            "minutes_per_60k_epoch": {mask: steps_per_epoch * t / 60 for mask, t in step.items()},
            "memory": memory, "memory_ratio": memory["sample"]["peak_rss_mib"] / memory["batch"]["peak_rss_mib"],
            "bare_loop_one_thread": bare,
            "gaussian_inference": gaussian}


VARIANTS = {
    "float32": [],
    "bf16": ["train.precision=bf16"],
    "compile": ["train.compile=true"],
    "bf16+compile": ["train.precision=bf16", "train.compile=true"],
}


def bench_variants(args) -> dict:
    """sparsebench's training of the MLP and the CNN in float32, with bf16 autocast, with
    torch.compile and with both (and, for the CNN, in the default memory format instead of
    channels_last), interleaved, as ratios to float32 eager."""
    device = _device(args)
    out = {}
    for model, overrides, batch_size in (("mlp", [], args.batch_size), ("cnn", CNN2, 64)):
        variants = dict(VARIANTS)
        if model == "cnn":
            variants["float32 contiguous"] = ["train.channels_last=false"]
        data, contenders = None, {}
        for name, extra in variants.items():
            cfg = compose_run(common_overrides(args, batch_size) + overrides + extra)
            data = data or load_splits(cfg.dataset, device)
            contenders[name] = Contender(cfg, data, seed=0)
            for _ in range(2):
                contenders[name].epoch_seconds()
        times = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, contender in contenders.items():
                times[name].append(contender.epoch_seconds())
        rate = {name: len(data.train) / statistics.median(t) for name, t in times.items()}
        out[model] = {"batch_size": batch_size, "samples_per_second": rate,
                      "ratio_to_float32": {k: v / rate["float32"] for k, v in rate.items()}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--root", default=None, help="folder holding the data set's files")
    parser.add_argument("--hidden", default="[1000,1000]")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40, help="mini-batches per contender and round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", default=None,
                        help="sections to run, comma-separated (default: loop,cnn,regularizers,flops,claims,"
                             "sweep, and variants on a GPU; also memory, plan, dropconnect, sequence)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--whole-run", default="kwinners_sparse_cnn2",
                        help="memory section: the experiment run whole (empty: none)")
    parser.add_argument("--dropconnect-steps", type=int, default=10,
                        help="training steps per contender and round in the dropconnect section")
    parser.add_argument("--dropconnect-rounds", type=int, default=5)
    parser.add_argument("--gaussian-images", type=int, default=10_000,
                        help="dropconnect section: validation images through Gaussian inference, before and after")
    parser.add_argument("--plan-repeats", type=int, default=3, help="plan section: first and kept plans timed")
    parser.add_argument("--dropconnect-peak", default=None, help=argparse.SUPPRESS)  # the child of that section
    args = parser.parse_args()
    if args.dropconnect_peak:
        print(json.dumps(dropconnect_peak_memory(args, args.dropconnect_peak)))
        return
    default = "loop,cnn,regularizers,flops,claims,sweep" + (",variants" if _device(args).type == "cuda" else "")
    sections = (args.only or default).split(",")

    figures = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}}
    for name in ("loop", "cnn"):
        if name in sections:
            figures[name] = loop = (bench_loop if name == "loop" else bench_cnn)(args)
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
    if "flops" in sections:
        figures["flops"] = flops = bench_flops(args)
        print(f"training FLOP/s against the matmul peak ({flops['matmul']}; {flops['threads']} threads), "
              f"medians of {args.rounds} rounds:", file=sys.stderr)
        for name in ("mlp", "cnn"):
            f = flops[name]
            print(f"  {name} training {f['flops_per_second'] / 1e9:6.1f} GFLOP/s, peak "
                  f"{f['matmul_peak_flops_per_second'] / 1e9:6.1f} GFLOP/s: {100 * f['fraction_of_peak']:.0f}% "
                  f"(quartiles {100 * f['fraction_quartiles'][0]:.0f}-{100 * f['fraction_quartiles'][1]:.0f}%; "
                  f"{f['flops_per_step'] / 1e9:.2f} GFLOP per step)", file=sys.stderr)
    if "variants" in sections:
        figures["variants"] = variants = bench_variants(args)
        for name, v in variants.items():
            print(f"{name} training, batch {v['batch_size']}, median of {args.rounds} rounds, against float32 eager:",
                  file=sys.stderr)
            for variant, rate in v["samples_per_second"].items():
                print(f"  {variant:20s} {rate:9.0f} samples/s  {v['ratio_to_float32'][variant]:.3f} x", file=sys.stderr)
    if "memory" in sections:
        print("wall time and peak resident memory (whole process) of paper protocols:", file=sys.stderr)
        figures["memory"] = bench_memory(args)
    if "plan" in sections:
        figures["plan"] = plan = bench_plan(args)
        for name, words in (("first", "a first plan (empty cache)"), ("kept", "the plan kept (another empty folder)")):
            p = plan[name]
            print(f"sparsebench-claims profile=paper run=false, {words}: median {p['median_seconds']:.2f} s of "
                  f"{', '.join(f'{s:.2f}' for s in p['wall_seconds'])}; peak {p['peak_bytes'] / 2**20:.0f} MiB",
                  file=sys.stderr)
    if "sequence" in sections:
        figures["sequence"] = sq = bench_sequence(args)
        print(f"a permuted task's copy of each split (raw images and inputs), CPU seconds of one thread, median of "
              f"{sq['rounds']} rounds:", file=sys.stderr)
        for name, m in sq["cpu_seconds"].items():
            print(f"  {name:10s} {sq['images'][name]:6d} images: take {m['take']:.3f} s, gather {m['gather']:.3f} s: "
                  f"{sq['ratio'][name]:.2f}x", file=sys.stderr)
    if "claims" in sections:
        figures["claims"] = claims = bench_claims(args)
        print(f"sparsebench-claims profile=smoke: {claims['wall_seconds']:.0f} s", file=sys.stderr)
    if "sweep" in sections:
        figures["sweep"] = sweep = bench_sweep(args)
        walls, speedup = sweep["wall_seconds"], sweep["speedup"]
        print(f"sweep of 8 runs on {sweep['cpu_count']} cores: sequential {walls['sequential']:.1f} s, "
              f"joblib {walls['joblib']:.1f} s ({speedup['joblib']:.2f}x), local (forked joblib workers) "
              f"{walls['local']:.1f} s ({speedup['local']:.2f}x)", file=sys.stderr)
    if "dropconnect" in sections:
        figures["dropconnect"] = dc = bench_dropconnect(args)
        print(f"DropConnect paper MLP ({dc['model']}), batch {dc['batch_size']}, median of {dc['rounds']} rounds of "
              f"{dc['steps_per_round']} steps, interleaved:", file=sys.stderr)
        for mask in ("batch", "sample"):
            mem = dc["memory"][mask]
            print(f"  mask={mask:6s} {1000 * dc['seconds_per_step'][mask]:8.1f} ms/step "
                  f"({dc['minutes_per_60k_epoch'][mask]:6.1f} min per 60,000-image epoch); peak RSS "
                  f"{mem['peak_rss_mib']:6.0f} MiB over {mem['peak_covers']} ({mem['rss_before_training_mib']:.0f} "
                  f"MiB before training)",
                  file=sys.stderr)
        print(f"  per-example masks: {dc['ratio_sample_to_batch']:.2f}x the step time of one mask per batch "
              f"(per-round quartiles {dc['ratio_quartiles'][0]:.2f}-{dc['ratio_quartiles'][1]:.2f}); peak memory "
              f"{dc['memory_ratio']:.2f}x", file=sys.stderr)
        bare = dc["bare_loop_one_thread"]
        print(f"  bare loop, one thread, CPU time of the thread: {1000 * bare['cpu_seconds_per_step']['batch']:.1f} ms "
              f"v {1000 * bare['cpu_seconds_per_step']['sample']:.1f} ms a step, {bare['ratio_sample_to_batch']:.2f}x "
              f"(per-round quartiles {bare['ratio_quartiles'][0]:.2f}-{bare['ratio_quartiles'][1]:.2f})", file=sys.stderr)
        g = dc["gaussian_inference"]
        print(f"  Gaussian inference over {g['images']:,} images: {g['seconds']['before']:.1f} s before, "
              f"{g['seconds']['after']:.1f} s now ({g['speedup']:.1f}x; outputs within {g['max_abs_difference']:.1e})",
              file=sys.stderr)
    print(json.dumps(figures, indent=1))
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(figures, stream, indent=1)


if __name__ == "__main__":
    main()
