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

import torch

from sparsebench import seeds
from sparsebench.data import DataSplits
from sparsebench.metrics.evaluation import correct_and_loss
from sparsebench.schemas import EvalConfig

KIND_INDEX = {"pixels": 0, "gaussian": 1, "salt_pepper": 2}


def _generator(seed: int, kind: str) -> torch.Generator:
    return torch.Generator().manual_seed(seeds.noise(seed, KIND_INDEX[kind]))


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


def corrupted(images01: torch.Tensor, kind: str, level: float, state: dict) -> torch.Tensor:
    """``images01`` under ``kind`` noise at ``level``; ``state`` holds the kind's draws (shared by levels)."""
    if kind == "gaussian":
        return (images01 + level * state["normal"]).clamp_(0.0, 1.0)
    mask = positions_mask(state["ranking"], level)
    if kind == "pixels":
        return set_positions(images01, mask, state["value"])
    return set_positions(images01, mask, state["salt"])


def draws(kind: str, images01: torch.Tensor, data: DataSplits, seed: int) -> dict:
    """The random draws of one noise kind for these images, made on the CPU and moved to their device."""
    n, channels, height, width = images01.shape
    generator = _generator(seed, kind)
    device = images01.device
    if kind == "gaussian":
        return {"normal": torch.randn(images01.shape, generator=generator).to(device)}
    state = {"ranking": position_ranking(n, height, width, generator).to(device)}
    if kind == "pixels":
        state["value"] = (data.mean + 2 * data.std).view(1, channels, 1, 1)
    else:
        salt = (torch.rand(n, 1, height, width, generator=generator) < 0.5).to(images01.dtype)
        state["salt"] = salt.to(device)
    return state


def noise_levels(cfg: EvalConfig, kind: str) -> list[float]:
    return {"pixels": cfg.pixel_levels, "gaussian": cfg.gaussian_levels, "salt_pepper": cfg.salt_pepper_levels}[kind]


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
            for level in noise_levels(cfg, kind):
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
