"""Accuracy, loss and calibration of a model on a split, batched on the device with one host sync at the end;
the per-image correctness of an evaluation, packed for the record."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sparsebench import seeds
from sparsebench.progress import steps

# Guo et al. 2017 (On calibration of modern neural networks) bin confidences into 15 equal-width bins.
ECE_BINS = 15


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Expected calibration error (Guo et al. 2017, eq. 3), in [0, 1]: the confidences (the largest predicted
    probability of each example) fall into ``bins`` equal-width bins ((m-1)/M, m/M]; ECE is
    sum_m |B_m|/n |acc(B_m) - conf(B_m)|, which is |sum over B_m of (correct - confidence)| summed over bins / n.

    Written here with torch: no package of this environment provides it (torch, numpy and scipy have none;
    torchmetrics, scikit-learn and netcal are not installed)."""
    confidence = confidence.detach().double().flatten()
    correct = correct.detach().double().flatten()
    if confidence.numel() == 0:
        raise ValueError("expected_calibration_error: no examples (an empty split has no calibration)")
    index = (confidence * bins).ceil().long().clamp(1, bins) - 1
    gaps = torch.bincount(index, weights=correct - confidence, minlength=bins)
    return (gaps.abs().sum() / confidence.numel()).item()


def pack_correct(correct: torch.Tensor) -> str:
    """A bool vector (one entry per image, in the split's stored order) as the record keeps it: base64
    (standard alphabet) of ``numpy.packbits`` (big-endian bit order, the last byte zero-padded)."""
    bits = np.packbits(correct.detach().to("cpu", torch.bool).numpy())
    return base64.b64encode(bits.tobytes()).decode("ascii")


def unpack_correct(bits: str, count: int) -> np.ndarray:
    """The bool vector of ``count`` images that :func:`pack_correct` packed into ``bits``; ValueError, in
    one line, for bits that are not base64 or do not hold ``count`` images (a damaged record)."""
    try:
        raw = base64.b64decode(bits, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ValueError(f"correct_bits {str(bits)[:20]!r}... is not base64 (standard alphabet): the record "
                         f"is damaged; run it again") from None
    if len(raw) != -(-int(count) // 8):
        raise ValueError(f"correct_bits holds {len(raw)} bytes but count is {count} images (needs "
                         f"{-(-int(count) // 8)}): the record is damaged; run it again")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=int(count)).astype(bool)


@dataclass
class Evaluation:
    accuracy: float  # percent
    loss: float  # mean cross-entropy, nats: the negative log-likelihood of the softmax probabilities
    ece: float  # expected calibration error of the softmax probabilities (ECE_BINS bins), in [0, 1]
    correct: torch.Tensor  # bool, one entry per example in the split's stored order, on the CPU

    def as_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "loss": self.loss, "ece": self.ece}


@torch.no_grad()
def correct_and_loss(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                     batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Number of correct predictions and summed loss, as device tensors (no host sync)."""
    correct = torch.zeros((), dtype=torch.int64, device=labels.device)
    loss = torch.zeros((), dtype=torch.float64, device=labels.device)
    for start in range(0, len(labels), batch_size):
        x, y = inputs[start:start + batch_size], labels[start:start + batch_size]
        logits = model(x).float()
        correct += (logits.argmax(1) == y).sum()
        loss += F.cross_entropy(logits, y, reduction="sum")
    return correct, loss


def evaluate(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int) -> Evaluation:
    """Accuracy (percent), mean loss, calibration and per-example correctness in evaluation mode, from one
    pass; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=labels.device)
    correct, confidence = [], []
    try:
        with torch.no_grad():
            for start in range(0, len(labels), batch_size):
                x, y = inputs[start:start + batch_size], labels[start:start + batch_size]
                logits = model(x).float()
                loss += F.cross_entropy(logits, y, reduction="sum")
                # The class from the logits, as training and correct_and_loss count it (softmax may tie them).
                correct.append(logits.argmax(1) == y)
                confidence.append(logits.softmax(1).amax(1))
    finally:
        model.train(was_training)
    hits, confidence = torch.cat(correct), torch.cat(confidence)
    count = len(labels)
    return Evaluation(100.0 * hits.sum().item() / count, loss.item() / count,
                      expected_calibration_error(confidence, hits), hits.cpu())


# torch's dropout layers (Dropout, Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout), by the public names
# of its dropout module: torch's classes do not say whether they are stochastic, sparsebench.nn's do.
TORCH_DROPOUT = tuple(getattr(nn.modules.dropout, name) for name in nn.modules.dropout.__all__)


def is_stochastic(module: nn.Module) -> bool:
    """Whether ``module`` acts randomly in training mode and deterministically in evaluation mode: as
    it declares with a ``stochastic`` attribute (sparsebench.nn's dropout, Sparseout and DropConnect
    layers; any new layer), else whether it is one of torch's dropout layers."""
    return bool(getattr(module, "stochastic", isinstance(module, TORCH_DROPOUT)))


def stochastic_layers(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that :func:`is_stochastic` finds, in ``model.modules()`` order."""
    return [m for m in model.modules() if is_stochastic(m)]


@torch.no_grad()
def with_dropout_on(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int,
                    passes: int, seed: int) -> dict | None:
    """``passes`` evaluations with the stochastic layers left in training mode (everything else, batch norm
    and k-winners included, stays in evaluation mode), as two groups:

    - ``dropout_on``: accuracy of each pass (mean, spread, range) beside the evaluation-mode accuracy, and
      ``consistency``, the share of examples given the same class in every pass;
    - ``mc_dropout``: Monte-Carlo dropout (Gal & Ghahramani 2016), the softmax probabilities averaged over
      the same passes: their accuracy (%), negative log-likelihood (nats, mean over examples) and expected
      calibration error (in [0, 1]).

    None when the model has no stochastic layer."""
    layers = stochastic_layers(model)
    if not layers:
        return None
    was_training = model.training
    deterministic = evaluate(model, inputs, labels, batch_size).accuracy
    model.eval()
    for layer in layers:
        layer.train()
    count = len(labels)
    predictions = torch.empty((passes, count), dtype=torch.int64, device=labels.device)
    # log p(label) of each pass: the averaged probability's log is their logsumexp minus log(passes), finite
    # even where a pass's probability of the label underflows to 0 in float32.
    label_log_probs = torch.empty((passes, count), dtype=torch.float64, device=labels.device)
    probabilities = None  # summed over passes, float64
    try:
        with torch.random.fork_rng(devices=[labels.device] if labels.device.type == "cuda" else []):
            torch.manual_seed(seeds.dropout_on(seed))
            for n in steps(range(passes), "passes with dropout left on"):
                for s in range(0, count, batch_size):
                    logits = model(inputs[s:s + batch_size]).float()
                    log_probs = logits.log_softmax(1)
                    if probabilities is None:
                        probabilities = torch.zeros((count, logits.shape[1]), dtype=torch.float64,
                                                    device=labels.device)
                    predictions[n, s:s + batch_size] = logits.argmax(1)
                    label_log_probs[n, s:s + batch_size] = log_probs.gather(1, labels[s:s + batch_size, None])[:, 0]
                    probabilities[s:s + batch_size] += log_probs.double().exp()
    finally:
        model.train(was_training)
    accuracy = (predictions == labels).double().mean(1) * 100.0
    consistent = (predictions == predictions[0]).all(0).double().mean() * 100.0
    confidence, averaged = (probabilities / passes).max(1)
    hits = averaged == labels
    nll = -(torch.logsumexp(label_log_probs, 0) - math.log(passes)).mean()
    return {
        "dropout_on": {"passes": passes, "eval_mode_accuracy": deterministic,
                       "accuracy_mean": accuracy.mean().item(),
                       "accuracy_std": accuracy.std().item() if passes > 1 else 0.0,
                       "accuracy_min": accuracy.min().item(), "accuracy_max": accuracy.max().item(),
                       "consistency": consistent.item()},
        "mc_dropout": {"passes": passes, "accuracy": 100.0 * hits.double().mean().item(), "nll": nll.item(),
                       "ece": expected_calibration_error(confidence, hits)},
    }
