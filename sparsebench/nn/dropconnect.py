"""DropConnect (Wan, Zeiler, Zhang, LeCun & Fergus 2013, "Regularization of Neural Networks using
DropConnect", ICML): a random Bernoulli mask on the weights instead of the activations.

The functions :func:`dropconnect_linear` and :func:`dropconnect_conv2d` hold the math (training and
inference); :class:`DropConnectLinear` and :class:`DropConnectConv2d` subclass ``nn.Linear`` and
``nn.Conv2d`` (same initialisation, same ``.weight`` and ``.bias``) and can be built around an
existing layer's parameters with ``from_module``.
"""

from __future__ import annotations

import hashlib
import math
import platform
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from sparsebench.nn.masks import (
    RESOLUTION_BITS,
    check_drop_probability,
    is_int,
    keep_probability,
    keep_threshold,
    scaled_keep_mask,
)

MASKS = ("batch", "sample")
INFERENCES = ("mean", "gaussian")
DEFAULT_MAX_MASK_BYTES = 1 << 30  # 1 GiB
DEFAULT_SAMPLES = 100
_DRAW_CHUNK_ELEMENTS = 1 << 22  # Gaussian draws are made at most this many values at a time

Activation = Callable[[torch.Tensor], torch.Tensor]


def _masked_weight(weight: torch.Tensor, p: float) -> torch.Tensor:
    """``weight * M`` with ``M = m / keep``, ``m ~ Bernoulli(keep)`` of the weight's shape and ``keep``
    the realised keep probability (:mod:`sparsebench.nn.masks`); exactly unbiased."""
    return weight * scaled_keep_mask(weight.shape, p, dtype=weight.dtype, device=weight.device)


# --- one mask per example (mask='sample') -------------------------------------------------------
#
# Example b's mask on weight row o (the output unit; for a convolution the filter, its in/groups x kh x
# kw elements in order) comes from 64-bit words of splitmix64 (Steele, Lea & Flood 2014) used as a
# counter-based generator: word n = mix(key + (n + 1) * golden), n = (b * rows + o) * words_per_row + j,
# with one ``key`` per forward call drawn from torch's global CPU generator. Element i of the row is kept
# when bit i % 64 of word i / 64 is set (keep probability exactly 1/2, one random bit an element), or
# otherwise when 16-bit field i % 4 of word i / 4 is below ``keep_threshold(p)`` (the keep probability
# and its 2**-16 resolution of :mod:`sparsebench.nn.masks`). Kept weights are scaled by 1 / keep, as
# with mask='batch'. A counter-based generator lets the backward pass regenerate any example's mask
# instead of storing batch x weights values, on any device and in any order: the C++ kernel
# (csrc/dropconnect_cpu.cpp, float32 linear layers on the CPU) and the torch ops below (other devices,
# dtypes, convolutions) draw bit-identical masks.

_GOLDEN, _MIX1, _MIX2 = (v - (1 << 64) for v in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))
_HALF = 1 << (RESOLUTION_BITS - 1)  # the threshold of keep probability 1/2: the 1-bit words
_KERNEL: list = []  # [module or None] once loading was tried


def _shift_right(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _words_per_row(cols: int, p: float) -> int:
    return -(-cols // 64) if keep_threshold(p) == _HALF else -(-cols // 4)


def mask_words(key: int, first: int, last: int, rows: int, cols: int, p: float,
               device: torch.device | str | None = None) -> torch.Tensor:
    """The random int64 words of examples ``first`` to ``last - 1`` (``(examples, rows, words per
    row)``) for a weight of ``rows`` rows of ``cols`` elements (int64 products wrap, as uint64 ones)."""
    per_row = _words_per_row(cols, p)
    n = torch.arange(first, last, device=device).view(-1, 1, 1) * rows
    n = (n + torch.arange(rows, device=device).view(1, -1, 1)) * per_row + torch.arange(per_row, device=device)
    z = (n + 1) * _GOLDEN + key
    z = (z ^ _shift_right(z, 30)) * _MIX1
    z = (z ^ _shift_right(z, 27)) * _MIX2
    return z ^ _shift_right(z, 31)


def sample_keep_masks(key: int, first: int, last: int, shape: tuple[int, ...] | torch.Size, p: float,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """The bool keep masks of examples ``first`` to ``last - 1`` (shape ``(examples, *shape)``) that
    the per-example DropConnect of a forward call with ``key`` applies to a weight of ``shape``."""
    rows, cols = shape[0], math.prod(shape[1:])
    words = mask_words(key, first, last, rows, cols, p, device)
    threshold = keep_threshold(p)
    if threshold >= 1 << RESOLUTION_BITS:
        return torch.ones((last - first, *shape), dtype=torch.bool, device=device)
    if threshold == _HALF:  # little-endian bytes: bit i of the row is bit i % 8 of byte i / 8
        octets = words.view(torch.uint8).unsqueeze(-1)
        kept = (octets >> torch.arange(8, dtype=torch.uint8, device=device)) & 1
        kept = kept.flatten(-2)[..., :cols].bool()
    else:  # 16-bit field i % 4 of word i / 4 is int16 number i of the row
        fields = words.view(torch.int16)[..., :cols].to(torch.int32) & 0xFFFF
        kept = fields < threshold
    return kept.reshape(last - first, *shape)


def draw_key(generator: torch.Generator | None = None) -> int:
    """The key of one forward call's per-example masks, from ``generator`` (default: the global CPU
    generator, so that ``torch.manual_seed`` fixes the masks on every device)."""
    return int(torch.randint(0, 1 << 62, (), generator=generator))


# The kernel's builds, tried in turn: (compiler flags, linker flags). Tuples: torch's ``load`` appends
# its own flags to the lists it is given, so each call gets fresh ones.
_BUILDS = ((("-O3", "-march=native", "-fopenmp"), ("-fopenmp",)), (("-O3", "-march=native"), ()))


def _kernel():
    """The compiled CPU kernel (built on first use with the host's instruction set, cached by torch in
    ``TORCH_EXTENSIONS_DIR``; its ``vector_path`` says which of its loops this CPU runs: avx512, avx2 or
    scalar), or None where it cannot be built (no C++ compiler): the torch ops then
    do the same work, about 10x slower, with a warning."""
    if not _KERNEL:
        try:
            from torch.utils.cpp_extension import load

            source = Path(__file__).with_name("csrc") / "dropconnect_cpu.cpp"
            # Built for this CPU's instruction set, so named by it: a cache shared with another machine
            # (a home folder on a cluster) never hands one CPU's build to another. Named by the source file
            # too (its path and content): two checkouts sharing the cache would otherwise rewrite one build
            # folder in turn, each process recompiling (a minute, 1.5 GB of compiler) what the other built.
            # -fopenmp: at::parallel_for is OpenMP pragmas in ATen's headers (torch's CPU builds use its
            # OpenMP backend); compiled without the flag they are ignored and the kernel runs on one thread.
            # Linked by soname, the extension shares the libgomp that torch has already loaded. A compiler
            # without OpenMP (Apple's clang) still builds the one-thread kernel.
            stem, code = f"sparsebench_dropconnect_cpu_{_instruction_set()}", source.read_bytes()
            for number, (flags, link) in enumerate(_BUILDS):
                name = f"{stem}_{_digest(str(source), code, *flags)}"
                try:
                    _KERNEL.append(load(name, [str(source)], extra_cflags=list(flags), extra_ldflags=list(link)))
                    break
                except Exception as error:  # noqa: BLE001 - tried again without OpenMP, then the torch ops
                    if number == len(_BUILDS) - 1:
                        raise
                    said = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
                    warnings.warn(f"DropConnect mask='sample': the C++ kernel could not be built with OpenMP "
                                  f"({said}); building it to run on one thread", stacklevel=3)
            if _KERNEL[0].vector_path == "scalar":
                warnings.warn("DropConnect mask='sample': this CPU has neither AVX-512 nor AVX2 with FMA; the "
                              "kernel's scalar loop is about 50x slower than its vector paths", stacklevel=3)
        except Exception as error:  # noqa: BLE001 - any build failure means: use the torch ops
            warnings.warn(f"DropConnect mask='sample': the C++ kernel could not be built ({error}); using torch "
                          f"ops, about 10x slower", stacklevel=3)
            _KERNEL.append(None)
    return _KERNEL[0]


def build_kernel() -> str:
    """Build the kernel now rather than at the first per-example DropConnect step (a compile of about half
    a minute): scripts/install.sh calls it, so that neither a first run nor the test lane waits for g++.
    Returns the loop this CPU runs (avx512, avx2 or scalar), or "torch ops" where it cannot be built."""
    kernel = _kernel()
    return kernel.vector_path if kernel is not None else "torch ops"


def _instruction_set() -> str:
    """A short digest of this CPU's model and feature flags (Linux's /proc/cpuinfo; elsewhere the platform)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        text = "".join(sorted({line for line in lines if line.startswith(("flags", "model name"))}))
    except OSError:
        text = platform.platform() + platform.processor()
    return _digest(text)


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def _uses_kernel(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and weight.dim() == 2
            and _kernel() is not None)


class _PerExample(torch.autograd.Function):
    """``out[b] = op(x[b], weight * M_b)`` with ``M_b`` example b's scaled mask, regenerated from
    ``key`` in the backward pass (nothing of batch x weight size is kept between the passes).

    ``op(x chunk, masked weights (examples, *weight.shape))`` computes a chunk of examples; the torch
    path draws the masks of ``chunk`` examples at a time."""

    @staticmethod
    def forward(ctx, x, weight, key, p, op, chunk):
        ctx.save_for_backward(x, weight)
        ctx.key, ctx.p, ctx.op, ctx.chunk = key, p, op, chunk
        scale = 1.0 / keep_probability(p)
        if op is _linear_op and _uses_kernel(x, weight):
            return _kernel().forward(x.contiguous(), weight.contiguous(), key, keep_threshold(p)).mul_(scale)
        parts = []
        for first in range(0, x.shape[0], chunk):
            last = min(first + chunk, x.shape[0])
            masks = sample_keep_masks(key, first, last, weight.shape, p, x.device).to(weight.dtype)
            parts.append(op(x[first:last], masks.mul_(weight)))
        return torch.cat(parts).mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[:2]
        scale = 1.0 / keep_probability(ctx.p)
        grad = grad * scale
        if ctx.op is _linear_op and _uses_kernel(x, weight):
            grad_x, grad_w = _kernel().backward(grad.contiguous(), x.contiguous(), weight.contiguous(), ctx.key,
                                                keep_threshold(ctx.p), need_x, need_w)
            return (grad_x if need_x else None), (grad_w if need_w else None), None, None, None, None
        grad_x = torch.empty_like(x) if need_x else None
        grad_w = torch.zeros_like(weight) if need_w else None
        for first in range(0, x.shape[0], ctx.chunk):
            last = min(first + ctx.chunk, x.shape[0])
            masks = sample_keep_masks(ctx.key, first, last, weight.shape, ctx.p, x.device).to(weight.dtype)
            with torch.enable_grad():
                xs = x[first:last].detach().requires_grad_(need_x)
                masked = (masks * weight.detach()).requires_grad_()
                out = ctx.op(xs, masked)
                grads = torch.autograd.grad(out, (xs, masked) if need_x else (masked,), grad[first:last])
            if need_x:
                grad_x[first:last] = grads[0]
            if need_w:
                grad_w += (grads[-1] * masks).sum(0)
        return grad_x, grad_w, None, None, None, None


def _linear_op(x: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    return torch.bmm(masked, x.unsqueeze(-1)).squeeze(-1)


_CHUNK_BYTES = 64 << 20  # the torch path's masks at once: a few tens of MB, whatever the batch


def _chunk(weight: torch.Tensor, max_mask_bytes: int) -> int:
    """Examples per chunk of the torch path: their masks (bool, bytes of random words, masked weights)
    within ``min(max_mask_bytes, 64 MiB)``, at least one example."""
    return max(1, min(max_mask_bytes, _CHUNK_BYTES) // (weight.numel() * (weight.element_size() + 10)))


def gaussian_moments(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, p: float,
                     layer: Callable[..., torch.Tensor] = F.linear) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the pre-activation ``u = layer(x, W * M) + b`` over DropConnect masks
    ``M = m / (1 - p)``, ``m ~ Bernoulli(1 - p)``:

    ``mean = layer(x, W) + b`` and ``var = p / (1 - p) * layer(x**2, W**2)`` (for a linear layer,
    ``(x**2) (W**2)^T``). ``layer`` is ``F.linear`` or a convolution taking ``(input, weight)``.
    ``p`` is the realised drop probability of the masks (:func:`sparsebench.nn.masks.keep_probability`).
    """
    keep = keep_probability(p)
    mean = layer(x, weight) if bias is None else layer(x, weight, bias)
    var = layer(x * x, weight * weight) * ((1.0 - keep) / keep)
    return mean, var


def gaussian_average(mean: torch.Tensor, var: torch.Tensor, samples: int, activation: Activation | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The average of ``activation(u)`` over ``samples`` draws ``u ~ N(mean, var)``, independent for
    every element of an example (Wan et al.'s moment-matching inference). ``activation=None``: identity.

    The first dim of ``mean`` and ``var`` is the batch. ``activation`` receives a chunk of draws as one
    batch (draws x examples, then the rest of ``mean``'s shape), so any per-example module can follow
    the draws: batch norm in evaluation mode, pooling, an activation, or all of them in sequence; its
    output may have another shape. The examples of a batch share the standard normal noise (``u = mean
    + sd * z``): an example's output then depends neither on the other examples nor on the batch
    size. The noise comes from ``generator`` (default: the global generator of ``mean``'s device).

    Wan et al. (2013, Algorithm 2) sample: they draw from the Gaussian and average the activation, and
    so does this function (a closed form exists for some activations, e.g. ReLU's
    ``mean * Phi(mean / sd) + sd * phi(mean / sd)``, but not for whatever else the block applies).
    The draws are made into one buffer reused for every chunk of draws (at most 2**22 values, 16 MiB in
    float32): fresh tensors of 2**24 values, as before, were mapped and page-faulted anew by every
    operation. Smaller blocks (2**18 values, examples and draws tiled to stay in a core's L2 cache)
    measured 1.6-2.8x slower here: more operations, each a parallel region on a shared host.
    """
    noise = torch.randn((samples, 1, *mean.shape[1:]), dtype=mean.dtype, device=mean.device, generator=generator)
    sd = var.clamp_min(0.0).sqrt()
    per_chunk = max(1, _DRAW_CHUNK_ELEMENTS // max(1, mean.numel()))
    differentiable = torch.is_grad_enabled() and (mean.requires_grad or var.requires_grad)  # out= has no autograd
    buffer = None if differentiable else torch.empty((min(per_chunk, samples), *mean.shape), dtype=mean.dtype,
                                                     device=mean.device)
    total = None
    for start in range(0, samples, per_chunk):
        count = min(per_chunk, samples - start)
        draws = torch.addcmul(mean, noise[start:start + count], sd,
                              out=None if buffer is None else buffer[:count])  # (count, batch, ...)
        if activation is not None:
            draws = activation(draws.flatten(0, 1))
            draws = draws.unflatten(0, (count, draws.shape[0] // count))
        part = draws[0] if count == 1 else draws.sum(dim=0)
        total = part.clone() if total is None else total.add_(part)  # a clone: part may be the buffer
    return total / samples


def _gaussian_inference(x: torch.Tensor, batched: bool, moments: Callable[[torch.Tensor], tuple],
                        samples: int, activation: Activation | None,
                        generator: torch.Generator | None) -> torch.Tensor:
    """:func:`gaussian_average` of the moments of ``x`` (given one batch dim when it has none)."""
    mean, var = moments(x if batched else x.unsqueeze(0))
    out = gaussian_average(mean, var, samples, activation, generator)
    return out if batched else out.squeeze(0)


def dropconnect_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, p: float = 0.5,
                       training: bool = True, mask: str = "batch", inference: str = "mean",
                       samples: int = DEFAULT_SAMPLES, activation: Activation | None = torch.relu,
                       max_mask_bytes: int = DEFAULT_MAX_MASK_BYTES,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """DropConnect for a linear layer; see :class:`DropConnectLinear` for the arguments.

    Training: ``x (W * M)^T + b`` (one ``M`` per call with ``mask='batch'``, one per row of ``x`` with
    ``mask='sample'``). Inference: ``x W^T + b`` (``'mean'``) or the average of ``activation`` over
    Gaussian draws of the pre-activation (``'gaussian'``, :func:`gaussian_average`), drawn from
    ``generator`` (default: the global generator).
    """
    if training:
        if p == 0.0:
            return F.linear(x, weight, bias)
        if mask == "batch":
            return F.linear(x, _masked_weight(weight, p), bias)
        rows = x.reshape(-1, x.shape[-1])
        if rows.shape[0] == 0:
            return F.linear(x, weight, bias)
        out = _PerExample.apply(rows, weight, draw_key(), p, _linear_op, _chunk(weight, max_mask_bytes))
        if bias is not None:
            out = out + bias
        return out.view(*x.shape[:-1], weight.shape[0])
    if inference == "mean" or p == 0.0:
        out = F.linear(x, weight, bias)
        if inference == "gaussian" and activation is not None:
            out = activation(out)
        return out
    return _gaussian_inference(x, x.dim() > 1, lambda rows: gaussian_moments(rows, weight, bias, p, F.linear),
                               samples, activation, generator)


def _conv_function(stride, padding, dilation, groups) -> Callable[..., torch.Tensor]:
    def conv(inp, weight, bias=None):
        return F.conv2d(inp, weight, bias, stride, padding, dilation, groups)

    return conv


def _grouped_conv(stride, padding, dilation, groups) -> Callable[..., torch.Tensor]:
    """A chunk of examples, each with its own masked filters ``(examples, out, in/groups, kh, kw)``,
    as one grouped convolution: example b's channels meet only example b's filters."""
    def conv(x, masked):
        batch = x.shape[0]
        out = F.conv2d(x.reshape(1, -1, *x.shape[2:]), masked.reshape(-1, *masked.shape[2:]), None, stride,
                       padding, dilation, groups * batch)
        return out.view(batch, masked.shape[1], *out.shape[2:])

    return conv


def dropconnect_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, p: float = 0.5,
                       training: bool = True, mask: str = "batch", inference: str = "mean",
                       samples: int = DEFAULT_SAMPLES, activation: Activation | None = torch.relu,
                       max_mask_bytes: int = DEFAULT_MAX_MASK_BYTES, stride=1, padding=0, dilation=1,
                       groups: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """DropConnect for a 2-d convolution of ``x`` ``(B, C, H, W)`` (zero padding; pad ``x`` yourself
    for other modes). Arguments as in :func:`dropconnect_linear`, plus the convolution's ``stride``,
    ``padding`` (int, pair or 'valid'/'same'), ``dilation`` and ``groups``."""
    conv = _conv_function(stride, padding, dilation, groups)
    if training:
        if p == 0.0:
            return conv(x, weight, bias)
        if mask == "batch":
            return conv(x, _masked_weight(weight, p), bias)
        batch = x.shape[0]
        if batch == 0:
            return conv(x, weight, bias)
        out = _PerExample.apply(x, weight, draw_key(), p, _grouped_conv(stride, padding, dilation, groups),
                                _chunk(weight, max_mask_bytes))
        if bias is not None:
            out = out + bias.view(1, -1, 1, 1)
        return out
    if inference == "mean" or p == 0.0:
        out = conv(x, weight, bias)
        if inference == "gaussian" and activation is not None:
            out = activation(out)
        return out
    return _gaussian_inference(x, x.dim() == 4, lambda images: gaussian_moments(images, weight, bias, p, conv),
                               samples, activation, generator)


def _check_options(p, mask, inference, samples, activation, max_mask_bytes, seed) -> None:
    check_drop_probability(p)
    if mask not in MASKS:
        raise ValueError(f"mask={mask!r} is not allowed: choose 'batch' (one mask per mini-batch) or "
                         f"'sample' (one mask per example)")
    if inference not in INFERENCES:
        raise ValueError(f"inference={inference!r} is not allowed: choose 'mean' (plain weights) or "
                         f"'gaussian' (moment matching)")
    if not is_int(samples) or samples < 1:
        raise ValueError(f"samples={samples!r} is not allowed: the number of Gaussian draws must be an "
                         f"integer >= 1")
    if activation is not None and not callable(activation):
        raise ValueError(f"activation={activation!r} is not allowed: give a callable (e.g. torch.relu) "
                         f"or None (identity)")
    if not is_int(max_mask_bytes) or max_mask_bytes < 1:
        raise ValueError(f"max_mask_bytes={max_mask_bytes!r} is not allowed: it must be an integer "
                         f"number of bytes >= 1")
    if not is_int(seed) or not 0 <= seed < 2**63:
        raise ValueError(f"seed={seed!r} is not allowed: the seed of the Gaussian draws must be an integer "
                         f"in [0, 2**63)")


class _DropConnectMixin:
    """Options, checks and representation shared by the two DropConnect layers."""

    stochastic = True  # random in training mode, deterministic in evaluation mode (see sparsebench.nn)

    def _set_options(self, p, mask, inference, samples, activation, max_mask_bytes, seed) -> None:
        _check_options(p, mask, inference, samples, activation, max_mask_bytes, seed)
        self.p, self.mask, self.inference = float(p), mask, inference
        self.samples, self.activation, self.max_mask_bytes = int(samples), activation, int(max_mask_bytes)
        self.seed = int(seed)

    @property
    def averages_gaussian_draws(self) -> bool:
        """Whether a forward call now returns an average over Gaussian draws of the pre-activation
        (evaluation with ``inference='gaussian'``) instead of the pre-activation itself."""
        return not self.training and self.inference == "gaussian"

    def _draw_generator(self, x: torch.Tensor) -> torch.Generator | None:
        # A fresh generator seeded with ``seed`` for every call that draws: the layer is then a
        # deterministic function at evaluation (the same model evaluated twice gives the same
        # numbers) and never advances the global generator, whose stream the training masks use.
        if not self.averages_gaussian_draws or self.p == 0.0:
            return None
        return torch.Generator(device=x.device).manual_seed(self.seed)

    def _activation(self, then: Activation | None) -> Activation | None:
        return self.activation if then is None else then

    @property
    def keep_probability(self) -> float:
        """The realised keep probability of the masks, ``round((1 - p) * 2**16) / 2**16``."""
        return keep_probability(self.p)

    def _options_repr(self) -> str:
        text = f"p={self.p}, mask={self.mask!r}, inference={self.inference!r}"
        if self.inference == "gaussian":
            name = "None" if self.activation is None else getattr(
                self.activation, "__name__", type(self.activation).__name__)
            text += f", samples={self.samples}, activation={name}, seed={self.seed}"
        return text


def _adopt(layer: nn.Module, source: nn.Module) -> nn.Module:
    """Make ``layer`` (built on the meta device) use ``source``'s parameters and training mode."""
    layer.weight = source.weight
    layer.bias = source.bias
    layer.train(source.training)
    return layer


class DropConnectLinear(_DropConnectMixin, nn.Linear):
    r"""A ``nn.Linear`` with DropConnect (Wan et al. 2013, "Regularization of Neural Networks using
    DropConnect", ICML).

    In training the weights (not the bias) are masked:

    .. math:: y = x\,(W \odot M)^\top + b, \qquad M = m / (1 - p),\; m \sim \mathrm{Bernoulli}(1 - p)

    elementwise, so ``E[y] = x W^T + b``, the plain layer's output. ``mask='batch'`` draws one ``M``
    per forward call (per mini-batch); ``mask='sample'`` draws one per example (the paper's), from a
    counter-based generator that the backward pass replays, so no mask or masked weight of batch x
    weight size is ever stored: a fused C++ kernel for float32 on the CPU, chunks of examples through
    torch ops elsewhere (see ``_PerExample``).

    At evaluation, ``inference='mean'`` uses the plain weights: ``y = x W^T + b``. ``'gaussian'`` is
    the paper's moment-matching inference: ``u ~ N(x W^T + b, p/(1-p) (x^2)(W^2)^T)``, and the layer
    returns the average of ``activation(u)`` over ``samples`` draws. The layer then outputs
    *post-activation* values in evaluation (and pre-activation values in training): a ReLU after it
    is a no-op at evaluation, since the average of ReLU draws is >= 0. Whatever must act on the
    pre-activation before the activation (batch norm, pooling) belongs in ``activation``, or in the
    ``then`` argument of ``forward``, which receives the draws as one batch (see
    :func:`gaussian_average`); sparsebench's ``HiddenBlock`` passes it the rest of its block. The
    draws come from a generator seeded with ``seed`` at every call, so evaluation is deterministic
    and leaves the global random generator (and with it the training masks) alone.

    Masks are drawn from 16 random bits per weight (:mod:`sparsebench.nn.masks`, about 10x cheaper on
    the CPU than ``bernoulli_``; 1 bit for per-example masks at p = 0.5): the keep probability is ``1 - p`` rounded to a multiple of
    ``2**-16`` (exact for p = 0.5, within 7.7e-6 otherwise) and kept weights are scaled by its
    inverse, so the expectation is exact; the Gaussian variance uses the same realised ``p``.

    Args:
        in_features, out_features, bias, device, dtype: as ``nn.Linear`` (same initialisation).
        p: drop probability of each weight, in [0, 1) (0: a plain linear layer).
        mask: ``'batch'`` (default) or ``'sample'``.
        inference: ``'mean'`` (default) or ``'gaussian'``.
        samples: Gaussian draws per evaluation (``inference='gaussian'``), an integer >= 1.
        activation: callable applied to each Gaussian draw (default ``torch.relu``; None: identity).
        max_mask_bytes: ``mask='sample'`` off the C++ kernel materialises the masks of at most this many
            bytes at once (and at most 64 MiB; at least one example), an integer >= 1 (default 1 GiB).
        seed: seed of the Gaussian draws, an integer in [0, 2**63) (default 0).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, p: float = 0.5,
                 mask: str = "batch", inference: str = "mean", samples: int = DEFAULT_SAMPLES,
                 activation: Activation | None = torch.relu, max_mask_bytes: int = DEFAULT_MAX_MASK_BYTES,
                 seed: int = 0, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self._set_options(p, mask, inference, samples, activation, max_mask_bytes, seed)

    @classmethod
    def from_module(cls, linear: nn.Linear, **options) -> "DropConnectLinear":
        """A DropConnectLinear that uses ``linear``'s weight and bias Parameters themselves (no copy,
        no re-initialisation, no random numbers drawn); ``options`` are the DropConnect arguments."""
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"linear={type(linear).__name__} is not allowed: give an nn.Linear")
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, device="meta",
                    dtype=linear.weight.dtype, **options)
        return _adopt(layer, linear)

    def forward(self, x: torch.Tensor, then: Activation | None = None) -> torch.Tensor:
        """``then``: what each Gaussian draw goes through instead of ``activation`` (used only while
        :attr:`averages_gaussian_draws`)."""
        return dropconnect_linear(x, self.weight, self.bias, self.p, self.training, self.mask,
                                  self.inference, self.samples, self._activation(then), self.max_mask_bytes,
                                  generator=self._draw_generator(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._options_repr()}"


class DropConnectConv2d(_DropConnectMixin, nn.Conv2d):
    r"""A ``nn.Conv2d`` with DropConnect (Wan et al. 2013, ICML): the filters (not the bias) are
    masked, ``y = conv(x, W * M) + b`` with ``M = m / (1 - p)``, ``m ~ Bernoulli(1 - p)``.

    Everything is as in :class:`DropConnectLinear`; ``mask='sample'`` runs grouped convolutions over
    chunks of examples with a masked copy of the filters per example, regenerated in the backward pass, and ``inference='gaussian'`` uses
    ``u ~ N(conv(x, W) + b, p/(1-p) conv(x^2, W^2))``, drawn independently at every position. The
    positions of one filter share its mask, so their pre-activations are correlated under
    DropConnect: the per-position moments are exact, but what pools over positions sees independent
    draws instead.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
        device, dtype: as ``nn.Conv2d`` (same initialisation).
        p, mask, inference, samples, activation, max_mask_bytes, seed: as in :class:`DropConnectLinear`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", p: float = 0.5,
                 mask: str = "batch", inference: str = "mean", samples: int = DEFAULT_SAMPLES,
                 activation: Activation | None = torch.relu, max_mask_bytes: int = DEFAULT_MAX_MASK_BYTES,
                 seed: int = 0, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)
        self._set_options(p, mask, inference, samples, activation, max_mask_bytes, seed)

    @classmethod
    def from_module(cls, conv: nn.Conv2d, **options) -> "DropConnectConv2d":
        """A DropConnectConv2d that uses ``conv``'s weight and bias Parameters themselves (no copy, no
        re-initialisation, no random numbers drawn); ``options`` are the DropConnect arguments."""
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"conv={type(conv).__name__} is not allowed: give an nn.Conv2d")
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode, device="meta",
                    dtype=conv.weight.dtype, **options)
        return _adopt(layer, conv)

    def forward(self, x: torch.Tensor, then: Activation | None = None) -> torch.Tensor:
        """``then`` as in :meth:`DropConnectLinear.forward`."""
        padding = self.padding
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = _pair(0)
        return dropconnect_conv2d(x, self.weight, self.bias, self.p, self.training, self.mask,
                                  self.inference, self.samples, self._activation(then), self.max_mask_bytes,
                                  self.stride, padding, self.dilation, self.groups, self._draw_generator(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._options_repr()}"
