"""Cheap Bernoulli masks drawn from a few random bits per element.

``torch.Tensor.bernoulli_`` on the CPU draws one double per element in a serial loop (about 12 ns an
element); ``torch.rand`` draws one float per element (about 3 ns). Here the generator fills int64 words
over their full range, so every bit is uniform (64 random bits per generator call), and each element
uses only the bits it needs:

* when the keep probability ``1 - p`` is a multiple of 1/2 or 1/4 (p = 0.5, 0.25, 0.75), 1 or 2 bits
  an element, turned into mask values by a 256-entry lookup table (about 0.2 ns an element);
* otherwise 16 bits an element, compared with an integer threshold (about 1 ns an element).

The price is the resolution of the keep probability, ``2**-16``: an element is kept with probability
``keep = round((1 - p) * 2**16) / 2**16``, exactly ``1 - p`` whenever ``p`` is a multiple of ``2**-16``
(0, 0.5, 0.25, 0.1875, ...) and within ``2**-17`` (7.7e-6) of it otherwise. Scaled masks use
``1 / keep`` (the realised probability), so masked tensors stay exactly unbiased.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F

RESOLUTION_BITS = 16
_LEVELS = 1 << RESOLUTION_BITS  # 65536 possible 16-bit values
_TABLES: dict[tuple, torch.Tensor] = {}


def is_real(value) -> bool:
    """A real number (numpy scalars included), not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def is_int(value) -> bool:
    """An integer (numpy integers included), not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def keep_threshold(p: float) -> int:
    """How many of the 65536 16-bit values keep an element at drop probability ``p``:
    ``round((1 - p) * 65536)``."""
    return int(round((1.0 - p) * _LEVELS))


def keep_probability(p: float) -> float:
    """The probability that a mask from :func:`keep_mask` keeps an element:
    ``round((1 - p) * 2**16) / 2**16``."""
    return keep_threshold(p) / _LEVELS


def check_drop_probability(p: float, name: str = "p") -> None:
    """Raise ValueError unless ``p`` is a drop probability in [0, 1) that keeps some elements at the
    mask resolution of ``2**-16``."""
    if not is_real(p) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name}={p!r} is not allowed: the drop probability must lie in [0, 1)")
    if keep_threshold(p) == 0:
        raise ValueError(f"{name}={p!r} is not allowed: it keeps nothing at the mask resolution of "
                         f"2**-{RESOLUTION_BITS}; use {name} <= {1 - 1 / _LEVELS}")


def _random_words(count: int, device, generator) -> torch.Tensor:
    """``count`` int64 words whose 64 bits are all uniform and independent."""
    words = torch.empty(count, dtype=torch.int64, device=device)
    return words.random_(-(1 << 63), None, generator=generator)  # the full range, not [0, 2**63)


def _bits_per_element(threshold: int) -> int:
    """1 or 2 when the keep probability is a multiple of 1/2 or 1/4 (lookup-table path), else 16."""
    for bits in (1, 2):
        if threshold % (_LEVELS >> bits) == 0:
            return bits
    return RESOLUTION_BITS


def _table(bits: int, kept_values: int, on: float, off: float, dtype: torch.dtype, device) -> torch.Tensor:
    """Row ``v`` holds the ``8 // bits`` mask values coded by byte ``v``: ``on`` where the element's
    ``bits``-bit field is below ``kept_values``, else ``off``."""
    key = (bits, kept_values, on, off, dtype, str(device))
    table = _TABLES.get(key)
    if table is None:
        per_byte = 8 // bits
        fields = torch.arange(256).unsqueeze(1) >> (torch.arange(per_byte) * bits)
        fields &= (1 << bits) - 1
        table = (fields < kept_values).to(torch.float64).mul_(on - off).add_(off)
        table = table.to(dtype=dtype, device=device)
        _TABLES[key] = table
    return table


def _draw(shape, p: float, dtype: torch.dtype, on: float, device, generator,
          off: float = 0.0) -> torch.Tensor:
    """Elements ``on`` (kept) with probability ``keep_probability(p)``, else ``off``; for a bool
    ``dtype``, True and False."""
    threshold = keep_threshold(p)
    if generator is not None and device is None:
        device = generator.device
    numel = math.prod(shape)
    if threshold >= _LEVELS:  # p == 0: keep everything, draw nothing
        return torch.full(tuple(shape), on if dtype != torch.bool else True, dtype=dtype, device=device)
    bits = _bits_per_element(threshold)
    if bits < RESOLUTION_BITS:
        per_byte = 8 // bits
        nbytes = -(-numel // per_byte)
        codes = _random_words(-(-nbytes // 8), device, generator).view(torch.uint8)[:nbytes]
        table = _table(bits, threshold // (_LEVELS >> bits), on, off,
                       dtype if dtype != torch.bool else torch.uint8, device)
        values = F.embedding(codes.to(torch.int64), table).view(-1)[:numel]
        if dtype == torch.bool:
            values = values.view(torch.bool)
        return values.view(tuple(shape))
    draws = _random_words(-(-numel // 4), device, generator).view(torch.int16)[:numel]  # uniform int16
    out = torch.empty(numel, dtype=dtype, device=device)
    torch.lt(draws, threshold - (_LEVELS >> 1), out=out)  # P(draw < t - 32768) = t / 65536
    if dtype != torch.bool and (on, off) != (1.0, 0.0):
        out.mul_(on - off).add_(off)
    return out.view(tuple(shape))


def keep_mask(shape: tuple[int, ...] | torch.Size, p: float, device: torch.device | str | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """A bool tensor of ``shape``, each element True (kept) independently with probability
    :func:`keep_probability` ``(p)``.

    Args:
        shape: the mask's shape.
        p: the drop probability, in [0, 1).
        device: where the mask lives (default: the CPU, or the generator's device).
        generator: the random source (default: the global generator of ``device``).
    """
    return _draw(shape, p, torch.bool, 1.0, device, generator)


def scaled_keep_mask(shape: tuple[int, ...] | torch.Size, p: float, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None, generator: torch.Generator | None = None,
                     minus_one: bool = False) -> torch.Tensor:
    """``M = m / keep`` as a ``dtype`` tensor of ``shape``, with ``m`` a :func:`keep_mask` and
    ``keep = keep_probability(p)``: each element is ``1 / keep`` with probability ``keep``, else 0, so
    ``E[M] = 1`` exactly. With ``minus_one=True``, ``M - 1`` instead (values ``1 / keep - 1`` and
    ``-1``), at no extra cost. Other arguments as in :func:`keep_mask`."""
    on = 1.0 / keep_probability(p)
    if minus_one:
        return _draw(shape, p, dtype, on - 1.0, device, generator, off=-1.0)
    return _draw(shape, p, dtype, on, device, generator)
