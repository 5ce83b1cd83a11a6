"""How a number is written on every page, in the console and in the figures: one function, so that a
report never says 5000 in one line and ±5,000 in the next."""

from __future__ import annotations

import math


def absent(x: float | None) -> bool:
    """Whether there is no number to write: None, or NaN (a statistic of too few runs)."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def number(x: float | None, digits: int = 4) -> str:
    """``x`` to ``digits`` significant digits, but never fewer than its integer digits: 102,545 and not
    102,500 (a rounded noise score would look exact), 15,641 and not 1.564e+04. Thousands are separated;
    exponents only from 1e7 and below 1 where ``digits`` cannot reach (0.00012 stays, 1.2e-05 too)."""
    if absent(x):
        return "nan"
    text = f"{x:.{digits}g}"
    rounded = float(text)
    if math.isfinite(x) and 1 <= abs(rounded) < 1e7 and ("e" in text or abs(rounded) >= 1e3):
        # Written out in full: rounding to ``digits`` may carry into a new digit (999.96 -> 1,000).
        whole = len(str(int(abs(round(x)))))
        text = f"{x:,.{max(0, digits - whole)}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return text


def signed(x: float | None, digits: int = 4) -> str:
    """``number`` with its sign, + included."""
    return ("+" if x is not None and x > 0 else "") + number(x, digits)


def bracket(low: float | None, high: float | None) -> str:
    """An interval, ``[low, high]`` with signs; "(no interval)" where there is none (a side of one run has
    no spread to make one from), not ``[nan, nan]``."""
    return "(no interval)" if absent(low) or absent(high) else f"[{signed(low)}, {signed(high)}]"


__all__ = ["absent", "bracket", "number", "signed"]
