"""Activation sparsity of each hidden layer: the fraction of exact zeros and Hoyer sparsity.

Hoyer sparsity of one example's activation vector x with n units is
(sqrt(n) - |x|_1 / |x|_2) / (sqrt(n) - 1): 0 when all units are equal in magnitude, 1 when one unit
carries everything. An all-zero vector counts as 1 (nothing active). Reported as the mean over examples.
"""

from __future__ import annotations

import math

import torch

from sparsebench.network import Network


def hoyer(activations: torch.Tensor) -> torch.Tensor:
    """Hoyer sparsity of each row of a (batch, n) tensor."""
    n = activations.shape[1]
    l1 = activations.abs().sum(1)
    l2 = activations.norm(dim=1)
    ratio = torch.where(l2 > 0, l1 / l2.clamp_min(torch.finfo(l2.dtype).tiny), torch.ones_like(l1))
    return (math.sqrt(n) - ratio) / (math.sqrt(n) - 1)


class ActivationSparsity:
    """Accumulates, while active (``with``), the sparsity of every hidden block's output over the
    forward passes run inside it."""

    def __init__(self, model: Network):
        self.model = model
        self._handles = []
        self._stats: dict[str, list[torch.Tensor]] = {}  # name -> [zeros, hoyer sum, examples]
        self._units: dict[str, int] = {}

    def __enter__(self) -> "ActivationSparsity":
        for name, block in self.model.hidden_blocks():
            self._handles.append(block.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def record(_module, _inputs, output: torch.Tensor) -> None:
            flat = output.detach().float().flatten(1)
            zeros = (flat == 0).sum(dtype=torch.float64)
            hoyer_sum = hoyer(flat).sum(dtype=torch.float64)
            zero = torch.zeros((), dtype=torch.float64, device=flat.device)
            total_zeros, total_hoyer, examples = self._stats.get(name, (zero, zero, 0))
            self._stats[name] = [total_zeros + zeros, total_hoyer + hoyer_sum, examples + flat.shape[0]]
            self._units[name] = flat.shape[1]
        return record

    def result(self) -> dict[str, dict[str, float]]:
        """Per hidden block: ``zero_fraction``, ``hoyer`` and ``units``; and ``mean``: the average of the
        blocks' zero fractions and Hoyer sparsities (each layer counting once)."""
        out = {}
        for name, (zeros, hoyer_sum, examples) in self._stats.items():
            units = self._units[name]
            examples = float(examples)
            out[name] = {"zero_fraction": float(zeros) / (examples * units), "hoyer": float(hoyer_sum) / examples,
                         "units": units}
        if out:
            layers = list(out.values())
            out["mean"] = {key: sum(layer[key] for layer in layers) / len(layers) for key in ("zero_fraction", "hoyer")}
        return out
