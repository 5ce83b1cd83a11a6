"""Optimizer and learning-rate schedule from the train config."""

from __future__ import annotations

import torch
from torch import nn

from sparsebench.schemas import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    # PyTorch's fused kernels update every parameter in one pass. Measured on a 784-1000-1000-10 MLP
    # at batch 128 on 2 CPU cores (interleaved, 80 rounds): a step 15% faster with fused Adam, but 2%
    # slower with fused SGD than with its default per-parameter loop, so SGD fuses on GPUs only.
    devices = {p.device.type for p in params}
    floating = all(p.is_floating_point() for p in params)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, fused=bool(params) and floating and devices <= {"cpu", "cuda"})
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           fused=bool(params) and floating and devices == {"cuda"})


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    """Stepped once per epoch; None for a constant rate."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return None
