"""The claims catalogue: one YAML file per claim in ``conf/claims/``, read into typed dataclasses.

A claim names its statement and source, the experiments (``conf/experiment/``) whose runs it rests
on (one list, or one per profile), the checks that decide it (each a call of the one generic
``claims.checks.judge``, each with the smallest effect that matters and why), the metrics of its
table and the figure behind it. A paper protocol (``kind: protocol``) has no checks but the paper's
published table (``table``), which the report puts beside ours. A claim is data: adding one is adding
a YAML file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Optional

from sparsebench import typed_yaml
from sparsebench.errors import ConfigError, check
from sparsebench.regularizers import REGULARIZERS
from sparsebench.report.plots import FIGURES
from sparsebench.report.stats import NEEDS_MARGIN, SIGNED, TESTS

PROFILES = ("smoke", "standard", "cnn", "map", "paper")
# The profiles a claim is answered in unless it lists its own: cnn holds only the claims that name it
# (conf/profile/cnn.yaml).
DEFAULT_PROFILES = ("smoke", "standard", "map", "paper")
# Metrics of an epoch chosen on the test set: paper tables may show them, no check may decide on them.
TEST_SELECTED = ("best_test/", "selection/test_accuracy_by_rule/best_test")
KINDS = ("claim", "protocol")
SETTINGS = ("tuned", "shared")  # Check.setting
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
    # greater / less: the smallest effect that matters, in the metric's units (a fraction of B's mean
    # with ``relative``), and in one line why; shown to lie inside ±smallest_effect, it refutes (report.stats.decide).
    smallest_effect: Optional[float] = None
    smallest_effect_reason: str = ""
    primary: bool = False  # the one check that decides the claim (none marked: the first)
    # A "can" claim ("dropout *can* cost accuracy"): the settings it is tried in, each merged into ``a``;
    # supported when some setting supports it (Holm across the settings), refuted when every one refutes.
    grid: Optional[list[dict[str, Any]]] = None
    # Of a tuned experiment (claims.tuning): read each arm at its tuned setting, or every arm at the
    # experiment's shared one. The report adds the primary check's shared-setting row by itself.
    setting: str = "tuned"
    # Of a tuned experiment: settings (train.lr) at which B is also run at A's chosen value, read against A as
    # tuned in a row beside the check: where the two arms chose different values, whether the effect is the
    # arm's own or that of the setting it chose (a property of the weights can follow the learning rate).
    matched: list[str] = field(default_factory=list)
    # A check the primary one rests on (a manipulation check: "L2 makes the weights smaller than no
    # regularization"): where it is not supported, the claim is undecided whichever way its primary check
    # falls, and on a regime map cell by cell (``claims.checks.unless_preconditions``).
    precondition: bool = False

    def a_settings(self) -> list[dict[str, Any]]:
        """A's selector in each setting of the grid (A alone without one): the groups a "can" check reads,
        each on its own, never pooled."""
        return [{**self.a, **setting} for setting in (self.grid or [{}])]


@dataclass
class RegimeMap:
    """Where a claim is answered across scale (the map profile): its primary check judged in each cell."""

    experiment: str  # the experiment (conf/experiment/) whose axes make the cells
    home: Optional[dict[str, Any]] = None  # selector of the cell that is the claim's home regime (None: no cell is)
    home_note: str = ""  # where the home regime lies relative to the map when no cell is it
    # The "can" checks (those with a grid): the settings they are tried in within each cell, where the map runs
    # fewer than a check's own grid (None: the checks' grids). Each must be a setting of some check's grid; a
    # check is tried in those of its own settings that are listed (all of them where none is).
    grid: Optional[list[dict[str, Any]]] = None
    # An axis named otherwise than its setting's usual name, where the experiment gives it another meaning
    # (K4's train.epochs: epochs a task), in the map's table, figure and summary.
    axis_names: dict[str, str] = field(default_factory=dict)


@dataclass
class HomeRegime:
    """The setting the source speaks of, and how this project's profiles stand to it."""

    setting: str  # network, data and budget of the source (or "general", with why)
    why: str  # where in the source that setting comes from
    here: str  # which profile runs it (or why none does): the scope of each verdict


@dataclass
class Seeds:
    """The seeds per group planned before the runs, for 80% power at the smallest effect that matters."""

    planned: int
    why: str  # the calculation: smallest effect, the pilot's spread and where that pilot comes from


@dataclass
class Revision:
    """A change to a card or its checks made after results had been seen, and why."""

    date: str  # YYYY-MM-DD
    change: str
    why: str


@dataclass
class Card:
    """What a claim means, written before its runs: how its sentence can be read, where the source made
    it, which check decides it (``Check.primary``) and how many seeds that needs; every later change is
    a dated revision."""

    literal: str  # the source's sentence read word for word, as a measurable statement
    strongest: str  # the strongest reasonable reading (what a defender of the source would say it means)
    home_regime: HomeRegime
    seeds: Seeds
    revisions: list[Revision] = field(default_factory=list)
    # What the summary row must say beside the verdict, where the verdict alone would mislead (S2's
    # "identical by construction": a test of the code, not evidence for the claim).
    reported_as: str = ""


@dataclass
class Column:
    """One column of a paper's table: what the paper reported and which metric of ours matches it."""

    name: str  # as the paper heads it, with its unit
    metric: str  # our metric measured as the paper measured it (e.g. at its best-test epoch)
    honest: Optional[str] = None  # the same metric at an epoch not chosen on the test set, shown beside
    error: bool = False  # the paper reports 100 - the metric (an error rate from an accuracy)
    decimals: int = 2  # as the paper prints its numbers (99.14, 1.60: 2; a noise score of 74,569: 0)


@dataclass
class Row:
    label: str  # the paper's name of the network
    runs: dict[str, Any]  # which of our runs it is (selected as checks select them)
    published: list[Any]  # per column: [mean, spread] (spread null: none given)
    note: str = ""


@dataclass
class Table:
    """A paper's published table, as data."""

    title: str
    source: str  # where the numbers are: table and page, or file
    spread: str  # what the paper's ± is ("standard deviation over 10 seeds"); ours is the same kind
    columns: list[Column]
    rows: list[Row]
    confirmed: bool = True  # false: the numbers could not be checked against the paper's text
    note: str = ""

    @property
    def has_spread(self) -> bool:
        """Whether the paper gives any spread to measure a difference against."""
        return any(spread is not None for row in self.rows for _, spread in row.published)


@dataclass
class Claim:
    id: str
    statement: str
    source: str
    # The experiments whose runs it rests on: a list for every profile, or a mapping from profile to
    # list with an optional ``default`` (e.g. small networks by default, the paper's under ``paper``).
    experiments: Any
    checks: list[Check]
    metrics: list[str]
    figure: Optional[str] = None  # a figure of sparsebench.report.plots.FIGURES, by name
    profiles: list[str] = field(default_factory=lambda: list(DEFAULT_PROFILES))
    kind: str = "claim"  # claim (with a verdict) | protocol (a paper's table, no verdict)
    note: str = ""
    table: Optional[Table] = None  # protocols: the paper's published table
    card: Optional[Card] = None  # claims: what the claim means, written before the runs
    map: Optional[RegimeMap] = None  # claims: its primary check judged across the map profile's cells (claims.regime)

    def experiments_for(self, profile: str) -> list[str]:
        """The experiments this claim rests on under ``profile``."""
        if isinstance(self.experiments, dict):
            return list(self.experiments.get(profile, self.experiments.get("default", [])))
        return list(self.experiments)

    @property
    def primary_index(self) -> int:
        """The place of the check that decides the claim: the one marked primary, else the first."""
        return next((i for i, c in enumerate(self.checks) if c.primary), 0)

    def all_experiments(self) -> list[str]:
        values = self.experiments.values() if isinstance(self.experiments, dict) else [self.experiments]
        return list(dict.fromkeys(e for group in values for e in group))


def _experiments() -> set[str]:
    folder = resources.files("sparsebench.conf") / "experiment"
    return {entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def _check_selector_values(selector: dict[str, Any], where: str, experiments: set[str]) -> None:
    """The names a selector can be checked for before any run: its experiments and regularizers. A misspelt
    one would select no run, and the check would read as one this profile does not run
    (``claims.evaluate.unless_not_run_here``) instead of a mistake."""
    for key, known, what in (("experiment", experiments, "conf/experiment/<name>.yaml"),
                             ("regularizer.name", set(REGULARIZERS), "registered regularizer")):
        if key in selector:
            value = selector[key]
            for name in value if isinstance(value, list) else [value]:
                check(name in known, f"{where}.{key}", name,
                      f"no {what} is named so; choose among {', '.join(sorted(known))}")


def _check_claim(claim: Claim, experiments: set[str]) -> None:
    key = f"claims/{claim.id}"
    check(re.fullmatch(r"[A-Z][A-Z0-9-]*", claim.id) is not None, f"{key}.id", claim.id,
          "must be upper-case letters, digits and dashes")
    check(claim.kind in KINDS, f"{key}.kind", claim.kind, f"choose one of {', '.join(KINDS)}")
    check(set(claim.profiles) <= set(PROFILES), f"{key}.profiles", list(claim.profiles),
          f"entries must be among {', '.join(PROFILES)}")
    if isinstance(claim.experiments, dict):
        for profile in claim.experiments:
            check(profile in (*PROFILES, "default"), f"{key}.experiments", profile,
                  f"keys must be profiles ({', '.join(PROFILES)}) or default")
    for experiment in claim.all_experiments():
        check(experiment in experiments, f"{key}.experiments", experiment,
              f"no conf/experiment/{experiment}.yaml; choose among {', '.join(sorted(experiments))}")
    check(claim.figure is None or claim.figure in FIGURES, f"{key}.figure", claim.figure,
          f"must name a figure among {', '.join(FIGURES)}")
    check(claim.kind == "protocol" or len(claim.checks) > 0, f"{key}.checks", [], "a claim needs at least one check")
    for number, item in enumerate(claim.checks, start=1):
        where = f"{key}.checks[{number}]"
        check(item.test in TESTS, f"{where}.test", item.test, f"choose one of {', '.join(TESTS)}")
        check(item.test not in NEEDS_MARGIN or item.margin is not None, f"{where}.margin", item.margin,
              f"the {item.test!r} test needs a margin")
        check(item.b is not None or item.metric_b is not None or item.against is not None, f"{where}.b", None,
              "give b (the runs compared with), metric_b (another metric of the same runs) or against (a constant)")
        for side, selector in (("a", item.a), ("b", item.b or {})):
            _check_selector_values(selector, f"{where}.{side}", experiments)
        for setting in item.grid or ():
            _check_selector_values(setting, f"{where}.grid", experiments)
        for metric in filter(None, (item.metric, item.metric_b)):
            check(not metric.startswith(TEST_SELECTED), f"{where}.metric", metric,
                  "no check may decide on an epoch chosen on the test set", "use the last or a best_val epoch's metric")
        if item.test in SIGNED:
            check(item.smallest_effect is not None and item.smallest_effect >= 0 and item.smallest_effect_reason.strip(),
                  f"{where}.smallest_effect", item.smallest_effect,
                  f"a {item.test!r} check needs the smallest effect that matters (>= 0) and smallest_effect_reason")
        check(item.setting in SETTINGS, f"{where}.setting", item.setting, f"choose one of {', '.join(SETTINGS)}")
        check(not item.matched or (item.b is not None and item.against is None and not item.grid
                                   and item.setting == "tuned"), f"{where}.matched", item.matched,
              "needs a check of tuned arms with a and b and no grid (B is run at A's chosen values)")
        if item.test == "identical":
            check(item.paired, f"{where}.paired", item.paired, "the 'identical' test compares runs pair by pair")
    primary = claim.checks[claim.primary_index] if claim.checks else None
    check(primary is None or not primary.precondition, f"{key}.checks[{claim.primary_index + 1}].precondition", True,
          "the primary check cannot be its own precondition", "mark another check, or drop precondition")
    for number, item in enumerate(claim.checks, start=1):
        check(not item.precondition or (item.setting == primary.setting and not item.grid and not item.matched),
              f"{key}.checks[{number}].precondition", item.precondition,
              f"a precondition is read on the primary check's runs: setting {primary.setting!r} as the primary's, "
              f"no grid, no matched", "give it the primary check's setting and drop grid and matched")
    if claim.map is not None:
        check(claim.map.experiment in experiments, f"{key}.map.experiment", claim.map.experiment,
              f"no conf/experiment/{claim.map.experiment}.yaml; choose among {', '.join(sorted(experiments))}")
        check(claim.map.experiment in claim.experiments_for("map"), f"{key}.map.experiment", claim.map.experiment,
              f"must be one of the claim's experiments under the map profile "
              f"({', '.join(claim.experiments_for('map')) or 'none'})", "add it to the claim's experiments: map: [...]")
        if claim.map.grid is not None:
            grids = [c.grid for c in claim.checks if c.grid]
            check(bool(claim.map.grid) and any(all(setting in own for setting in claim.map.grid) for own in grids),
                  f"{key}.map.grid", claim.map.grid,
                  f"must be some of the grid settings of one of the claim's \"can\" checks "
                  f"({'; '.join(map(str, grids)) or 'it has none'})",
                  "list the settings the map experiments run, each as the check's grid writes it, or drop map.grid")
    if claim.table is not None:
        for number, column in enumerate(claim.table.columns, start=1):
            check(0 <= column.decimals <= 6, f"{key}.table.columns[{number}].decimals", column.decimals,
                  "must be 0 to 6: the decimals the paper prints")
        for number, row in enumerate(claim.table.rows, start=1):
            shapes_ok = len(row.published) == len(claim.table.columns) and all(
                isinstance(cell, list) and len(cell) == 2 and isinstance(cell[0], (int, float))
                and (cell[1] is None or isinstance(cell[1], (int, float))) for cell in row.published)
            check(shapes_ok, f"{key}.table.rows[{number}].published", row.published,
                  f"needs one [mean, spread] per column ({len(claim.table.columns)}), numbers (spread may be null)")
    if claim.kind == "claim":
        _check_card(claim, key)


def _check_card(claim: Claim, key: str) -> None:
    card = claim.card
    check(card is not None, f"{key}.card", None, "a claim needs a card: literal, strongest, home_regime, seeds, "
          "revisions (see docs/claims.md in the project's repository)")
    for name in ("literal", "strongest"):
        check(getattr(card, name).strip() != "", f"{key}.card.{name}", "", "must say how the claim is read")
    check(card.seeds.planned >= 2, f"{key}.card.seeds.planned", card.seeds.planned,
          "must be at least 2 (an interval over seeds needs two)")
    for number, revision in enumerate(card.revisions, start=1):
        check(re.fullmatch(r"\d{4}-\d{2}-\d{2}", revision.date) is not None,
              f"{key}.card.revisions[{number}].date", revision.date, "must be a date YYYY-MM-DD")
    primaries = [c for c in claim.checks if getattr(c, "primary", False)]
    check(len(primaries) <= 1, f"{key}.checks", [c.label for c in primaries], "at most one check may be primary")


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
        claim = typed_yaml.read(Claim, entry.read_text(), f"conf/claims/{entry.name}")
        _check_claim(claim, experiments)
        if claim.id in claims:
            raise ConfigError(f"claims/{entry.name}", claim.id, "the id is used by another claim file")
        claims[claim.id] = claim
    return dict(sorted(claims.items(), key=lambda item: claim_order(item[0])))
