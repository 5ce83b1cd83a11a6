"""Noise robustness: test accuracy on corrupted copies of the test images.

Corruptions act on the raw [0, 1] images, before normalisation:
- ``pixels`` (the k-winners paper's protocol): exactly int(H * W * eta) positions per image are set to
  the data set's mean + 2 std (every channel of a chosen position); the noise score is the number of
  correct predictions summed over all levels (110,000 at most for MNIST's 10,000 images and 11 levels).
- ``gaussian``: x + sigma * N(0, 1), clipped to [0, 1].
- ``salt_pepper``: exactly int(H * W * f) positions per image set to 0 or 1 (each with probability 1/2).

The draws come from ``noise_seed`` alone (not the model's seed), on the CPU, so every model of a sweep,
on any device, sees the same corrupted images. For the position-based kinds, one random ranking of the
positions per image serves every level: a level's positions are the first int(H * W * level) of it, so
the corrupted sets are nested and each level is still a uniform draw of exactly that many positions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sparsebench import seeds
from sparsebench.data import DataSplits
from sparsebench.metrics.evaluation import correct_and_loss
from sparsebench.progress import steps
from sparsebench.registry import Registry
from sparsebench.schemas import EvalConfig


@dataclass(frozen=True)
class NoiseKind:
    """One kind of corruption: its own random stream, its name in words, its levels in ``eval``, the
    draws it makes once per test set, and the corrupted images at one level from those draws."""

    index: int  # its random stream (seeds.noise): fixed once records exist, never reused
    label: str  # "pixel noise"
    levels: Callable[[EvalConfig], list[float]]
    draw: Callable[[torch.Tensor, DataSplits, torch.Generator], dict]  # (images01, data, generator) -> state
    corrupt: Callable[[torch.Tensor, float, dict], torch.Tensor]  # (images01, level, state) -> images01


NOISE_KINDS: Registry[NoiseKind] = Registry("noise kind", "eval.noise")


def position_ranking(count: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """For each of ``count`` images, the H*W positions in a uniformly random order (count x H*W)."""
    return torch.rand(count, height * width, generator=generator).argsort(dim=1)


def positions_mask(ranking: torch.Tensor, fraction: float) -> torch.Tensor:
    """Bool (count x H*W): the first int(H*W*fraction) positions of each image's ranking."""
    chosen = int(ranking.shape[1] * fraction)
    mask = torch.zeros(ranking.shape, dtype=torch.bool, device=ranking.device)
    mask.scatter_(1, ranking[:, :chosen], True)
    return mask


def set_positions(images01: torch.Tensor, mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Copy of ``images01`` (N x C x H x W) with every channel of the masked positions set to ``values``
    (broadcastable to N x C x H x W)."""
    n, _, height, width = images01.shape
    where = mask.view(n, 1, height, width)
    return torch.where(where, values, images01)


def _ranking(images01: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, _, height, width = images01.shape
    return position_ranking(n, height, width, generator).to(images01.device)


def _pixels_draw(images01: torch.Tensor, data: DataSplits, generator: torch.Generator) -> dict:
    return {"ranking": _ranking(images01, generator),
            "value": (data.mean + 2 * data.std).view(1, images01.shape[1], 1, 1)}


def _salt_pepper_draw(images01: torch.Tensor, data: DataSplits, generator: torch.Generator) -> dict:
    n, _, height, width = images01.shape
    ranking = _ranking(images01, generator)
    salt = (torch.rand(n, 1, height, width, generator=generator) < 0.5).to(images01.dtype)
    return {"ranking": ranking, "salt": salt.to(images01.device)}


def _gaussian_draw(images01: torch.Tensor, data: DataSplits, generator: torch.Generator) -> dict:
    return {"normal": torch.randn(images01.shape, generator=generator).to(images01.device)}


NOISE_KINDS.add("pixels", NoiseKind(
    0, "pixel noise", lambda cfg: cfg.pixel_levels, _pixels_draw,
    lambda images01, level, state: set_positions(images01, positions_mask(state["ranking"], level), state["value"])))
NOISE_KINDS.add("gaussian", NoiseKind(
    1, "Gaussian noise", lambda cfg: cfg.gaussian_levels, _gaussian_draw,
    lambda images01, level, state: (images01 + level * state["normal"]).clamp_(0.0, 1.0)))
NOISE_KINDS.add("salt_pepper", NoiseKind(
    2, "salt-and-pepper noise", lambda cfg: cfg.salt_pepper_levels, _salt_pepper_draw,
    lambda images01, level, state: set_positions(images01, positions_mask(state["ranking"], level), state["salt"])))


def draws(kind: str, images01: torch.Tensor, data: DataSplits, seed: int) -> dict:
    """The random draws of one noise kind for these images, made on the CPU and moved to their device."""
    noise = NOISE_KINDS[kind]
    return noise.draw(images01, data, torch.Generator().manual_seed(seeds.noise(seed, noise.index)))


def corrupted(images01: torch.Tensor, kind: str, level: float, state: dict) -> torch.Tensor:
    """``images01`` under ``kind`` noise at ``level``; ``state`` holds the kind's draws (shared by levels)."""
    return NOISE_KINDS[kind].corrupt(images01, level, state)


def noise_levels(cfg: EvalConfig, kind: str) -> list[float]:
    return NOISE_KINDS[kind].levels(cfg)


def noise_robustness(model: torch.nn.Module, data: DataSplits, cfg: EvalConfig) -> dict:
    """Per kind in ``cfg.noise``: levels, accuracy (percent) and correct count at each level, and the
    score (correct predictions summed over the levels)."""
    was_training = model.training
    model.eval()
    images01 = data.test.images.float() / 255.0
    results = {}
    try:
        for kind in cfg.noise:
            state = draws(kind, images01, data, cfg.noise_seed)
            correct = []
            for level in steps(noise_levels(cfg, kind), f"noise robustness: {kind}"):
                inputs = data.to_inputs(corrupted(images01, kind, level, state))
                hits, _ = correct_and_loss(model, inputs, data.test.labels, cfg.batch_size)
                correct.append(hits)
            correct = torch.stack(correct).tolist()  # one host sync per kind
            results[kind] = {"levels": list(noise_levels(cfg, kind)), "correct": correct,
                             "accuracy": [100.0 * c / len(data.test) for c in correct], "score": sum(correct),
                             "images": len(data.test)}
    finally:
        model.train(was_training)
    return results
