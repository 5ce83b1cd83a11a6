"""The claims catalogue: one YAML file per claim in ``conf/claims/``, read into typed dataclasses.

A claim names its statement and source, the experiments (``conf/experiment/``) whose runs it rests
on, the checks that decide it (each a call of the one generic ``report.stats.compare``), the metrics
of its table and the figure behind it. A claim is data: adding one is adding a YAML file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sparsebench.errors import ConfigError, SparsebenchError, check
from sparsebench.report import plots
from sparsebench.report.stats import NEEDS_MARGIN, TESTS

PROFILES = ("smoke", "quick", "paper")
KINDS = ("claim", "protocol")
SOURCE_ORDER = "DKSGP"  # the order of CLAIMS.md: the dropout essay, k-winners, Sparseout, glossary, protocols


@dataclass
class Check:
    """One comparison: ``metric`` of the runs selected by ``a`` against those selected by ``b``."""

    label: str  # what the check says, in words
    metric: str
    a: dict[str, Any]
    b: Optional[dict[str, Any]] = None  # omitted: the same runs as a (with metric_b), or a constant
    test: str = "greater"  # greater | less | within | at_most | equivalent (see report.stats)
    margin: Optional[float] = None
    relative: bool = False  # margin as a fraction of B's mean
    paired: bool = False  # pair the runs of A and B by seed
    metric_b: Optional[str] = None  # another metric on B's side
    against: Optional[float] = None  # compare A's mean with this constant


@dataclass
class Claim:
    id: str
    statement: str
    source: str
    experiments: list[str]
    checks: list[Check]
    metrics: list[str]
    figure: Optional[str] = None  # a figure of sparsebench.report.plots, by name (plot_<figure>)
    profiles: list[str] = field(default_factory=lambda: list(PROFILES))
    kind: str = "claim"  # claim (with a verdict) | protocol (a paper's table, no verdict)
    note: str = ""


def _experiments() -> set[str]:
    folder = resources.files("sparsebench.conf") / "experiment"
    return {entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def _check_claim(claim: Claim, experiments: set[str]) -> None:
    key = f"claims/{claim.id}"
    check(re.fullmatch(r"[A-Z][A-Z0-9-]*", claim.id) is not None, f"{key}.id", claim.id,
          "must be upper-case letters, digits and dashes")
    check(claim.kind in KINDS, f"{key}.kind", claim.kind, f"choose one of {', '.join(KINDS)}")
    check(set(claim.profiles) <= set(PROFILES), f"{key}.profiles", list(claim.profiles),
          f"entries must be among {', '.join(PROFILES)}")
    for experiment in claim.experiments:
        check(experiment in experiments, f"{key}.experiments", experiment,
              f"no conf/experiment/{experiment}.yaml; choose among {', '.join(sorted(experiments))}")
    check(claim.figure is None or hasattr(plots, f"plot_{claim.figure}"), f"{key}.figure", claim.figure,
          "must name a figure of sparsebench.report.plots (plot_<name>)")
    check(claim.kind == "protocol" or len(claim.checks) > 0, f"{key}.checks", [], "a claim needs at least one check")
    for number, item in enumerate(claim.checks, start=1):
        where = f"{key}.checks[{number}]"
        check(item.test in TESTS, f"{where}.test", item.test, f"choose one of {', '.join(TESTS)}")
        check(item.test not in NEEDS_MARGIN or item.margin is not None, f"{where}.margin", item.margin,
              f"the {item.test!r} test needs a margin")
        check(item.b is not None or item.metric_b is not None or item.against is not None, f"{where}.b", None,
              "give b (the runs compared with), metric_b (another metric of the same runs) or against (a constant)")


def claim_order(claim_id: str) -> tuple:
    head = SOURCE_ORDER.find(claim_id[0])
    number = re.match(r"[A-Z]+-?(\d*)", claim_id)
    return (head if head >= 0 else len(SOURCE_ORDER), int(number[1]) if number and number[1] else 0, claim_id)


def load_catalogue() -> dict[str, Claim]:
    """Every claim of ``conf/claims/``, checked, by id in the order of CLAIMS.md."""
    folder = resources.files("sparsebench.conf") / "claims"
    experiments = _experiments()
    claims = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            merged = OmegaConf.merge(OmegaConf.structured(Claim), OmegaConf.create(entry.read_text()))
            claim = OmegaConf.to_object(merged)
        except OmegaConfBaseException as error:
            raise SparsebenchError(f"conf/claims/{entry.name}: {str(error).splitlines()[0]}") from None
        _check_claim(claim, experiments)
        if claim.id in claims:
            raise ConfigError(f"claims/{entry.name}", claim.id, "the id is used by another claim file")
        claims[claim.id] = claim
    return dict(sorted(claims.items(), key=lambda item: claim_order(item[0])))
