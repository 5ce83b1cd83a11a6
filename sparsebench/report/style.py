"""How each arm and each verdict is drawn: one colour, marker and line style per arm, the same in every figure
of a report, from Okabe & Ito's colour-blind-safe palette; the verdicts by shape as well as by colour.

An arm's *family* (``arm_family``) is read from its runs' settings (the regularizer, k-winners' two kinds of
sparsity, max-norm, a narrow dense network), never from its place in a figure, so that dropout is the same
orange square in every figure. Several groups of one family in one figure (dropout at two rates) keep the
family's style for the first and take styles no other group of the figure has for the rest (``styles_for``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

# Okabe & Ito (2008), "Color Universal Design": the eight colours as they publish them (sRGB hex).
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}


@dataclass(frozen=True)
class Style:
    color: str
    marker: str
    linestyle: str

    def kwargs(self) -> dict:
        return {"color": self.color, "marker": self.marker, "linestyle": self.linestyle}


# Each family of arms, its name in words and its style: defined here once. No two share colour and marker;
# those sharing a colour (the eight colours do not cover twelve families) never meet in one claim's figure
# and differ in marker and line style all the same.
ARMS: dict[str, tuple[str, Style]] = {
    "none": ("no regularizer", Style(OKABE_ITO["black"], "o", "-")),
    "dropout": ("dropout", Style(OKABE_ITO["orange"], "s", "--")),
    "l1": ("L1", Style(OKABE_ITO["sky blue"], "^", "-.")),
    "l2": ("L2", Style(OKABE_ITO["bluish green"], "D", ":")),
    "kwinners": ("k-winners and sparse weights", Style(OKABE_ITO["blue"], "v", "-")),
    "kwinners_only": ("k-winners, dense weights", Style(OKABE_ITO["vermillion"], "P", "--")),
    "sparse_weights": ("sparse weights, ReLU", Style(OKABE_ITO["reddish purple"], "X", "-.")),
    "dense_narrow": ("dense, as many nonzero weights", Style(OKABE_ITO["black"], "h", ":")),
    "sparseout": ("Sparseout", Style(OKABE_ITO["vermillion"], "*", "-")),
    "dropconnect": ("DropConnect", Style(OKABE_ITO["reddish purple"], "p", "--")),
    "dropout_maxnorm": ("dropout + max-norm", Style(OKABE_ITO["sky blue"], "<", ":")),
    "spatial_dropout": ("spatial dropout", Style(OKABE_ITO["bluish green"], ">", "--")),
}
# Styles for further groups of a family already drawn, and for families not listed: every colour with
# every marker, in an order that changes colour first.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "*", "p", "<", ">")
LINESTYLES = ("-", "--", "-.", ":")
# Yellow and black last: a thin yellow line is faint on white, and black reads as the dense network's colour.
_SPARE_COLOURS = [c for name, c in OKABE_ITO.items() if name not in ("yellow", "black")] + \
    [OKABE_ITO["yellow"], OKABE_ITO["black"]]
SPARE = tuple(Style(colour, MARKERS[(i + j) % len(MARKERS)], LINESTYLES[(i + j) % len(LINESTYLES)])
              for j in range(len(MARKERS)) for i, colour in enumerate(_SPARE_COLOURS))

# Verdicts: a colour (from the same palette) and a shape each, so that they read apart without colour; under a
# deuteranopia simulation (Machado et al. 2009) the three common ones stay apart by colour too (grey, olive, blue).
VERDICT_STYLES = {
    "supported": Style(OKABE_ITO["bluish green"], "o", "-"),
    "refuted": Style(OKABE_ITO["vermillion"], "X", "-"),
    "regime-dependent": Style(OKABE_ITO["reddish purple"], "P", "-"),
    "inconclusive": Style(OKABE_ITO["blue"], "s", "-"),
    "not run": Style("#777777", "x", "-"),
}


def ink(colour: str) -> str:
    """``colour`` darkened to 60% for text on white (Okabe-Ito's orange or sky blue are too light to read as
    text), the same hue as the marks it names. ``colour``: "#rrggbb", as every colour here is; read by hand,
    because matplotlib's colour parser would cost every command that draws nothing its 0.35 s import."""
    if not (len(colour) == 7 and colour.startswith("#")):
        raise ValueError(f"colour {colour!r}: give it as #rrggbb")
    return "#" + "".join(f"{round(0.6 * int(colour[i:i + 2], 16)):02x}" for i in (1, 3, 5))


# The verdicts' colours as text (the claims page), the hues of their marks in the figures.
VERDICT_INK = {verdict: ink(style.color) for verdict, style in VERDICT_STYLES.items()}


def _first(rows: pd.DataFrame, column: str):
    if column not in rows.columns:
        return None
    for value in rows[column]:
        if isinstance(value, (list, tuple)):
            return value
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return value
    return None


def _below_one(value) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(v, (int, float)) and v < 1 for v in values)


def arm_family(rows: pd.DataFrame) -> str | None:
    """The family (a key of ``ARMS``) of a group's runs, from their settings; None when they name no
    regularizer (``styles_for`` gives those spare styles)."""
    name = _first(rows, "regularizer.name")
    experiment = str(_first(rows, "experiment") or "")
    if name is None:
        return None
    if name == "kwinners":
        activations, weights = (_below_one(_first(rows, "regularizer.percent_on")),
                                _below_one(_first(rows, "regularizer.weight_density")))
        return "kwinners" if activations and weights else "kwinners_only" if activations else \
            "sparse_weights" if weights else "none"
    if name == "none" and "dense_narrow" in experiment:
        return "dense_narrow"
    if name == "dropout":
        max_norm = _first(rows, "regularizer.max_norm")
        if isinstance(max_norm, (int, float)) and math.isfinite(max_norm) and max_norm > 0:
            return "dropout_maxnorm"
        if _first(rows, "regularizer.spatial") is True:
            return "spatial_dropout"
    return str(name) if str(name) in ARMS else None


def styles_for(groups: Sequence[pd.DataFrame]) -> list[Style]:
    """The style of each group (its runs) of one figure: its family's (``ARMS``) for the first group of each
    family, a spare style no other group of the figure has for any further one."""
    families = [arm_family(rows) for rows in groups]
    taken: set[Style] = set()
    out: list[Style | None] = []
    for family in families:
        style = ARMS[family][1] if family in ARMS else None
        if style is not None and style in taken:
            style = None
        if style is not None:
            taken.add(style)
        out.append(style)
    # Spares skip the colours and markers the figure's family styles use, so a spare never passes for one.
    used_colours = {s.color for s in taken}
    used_pairs = {(s.color, s.marker) for s in taken}
    spares = [s for s in SPARE if s.color not in used_colours] + \
        [s for s in SPARE if s.color in used_colours and (s.color, s.marker) not in used_pairs]
    for i, style in enumerate(out):
        if style is None:
            spare = next(s for s in spares if s not in taken)
            taken.add(spare)
            out[i] = spare
    return out  # type: ignore[return-value]


__all__ = ["ARMS", "OKABE_ITO", "Style", "VERDICT_INK", "VERDICT_STYLES", "arm_family", "ink", "styles_for"]
