"""The claims catalogue, the runs it plans, and sparsebench-claims end to end on the smoke profile."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sparsebench.data
from sparsebench.claims.catalogue import (
    PROFILES,
    Card,
    Check,
    Claim,
    HomeRegime,
    Revision,
    Seeds,
    _check_claim,
    _experiments,
    load_catalogue,
)
from sparsebench.claims.cli import choose, parallel_jobs, parse, shown_settings
from sparsebench.claims.cli import main as claims_main
from sparsebench.claims.plan import plan
from sparsebench.errors import ConfigError, SparsebenchError
from sparsebench.report.aggregate import select
from tests.conftest import call_command

# What these reports count and say is tested here; their figures are tested in tests/report.
pytestmark = pytest.mark.usefixtures("figures_not_rendered")

CLAIM_IDS = {"D1", "D2", "D3", "D4", "D5", "K1", "K2", "K3", "K4", "S1", "S2", "S3", "S4", "G1", "G2"}


def test_catalogue_covers_every_claim_and_the_paper_protocols():
    catalogue = load_catalogue()
    claims = {i for i, c in catalogue.items() if c.kind == "claim"}
    assert CLAIM_IDS <= claims
    assert {"P-KW", "P-DO", "P-DC"} <= {i for i, c in catalogue.items() if c.kind == "protocol"}
    assert list(catalogue)[:3] == ["D1", "D2", "D3"]
    assert all(c.checks for c in catalogue.values() if c.kind == "claim")


CARD = Card("literal", "strongest", HomeRegime("MLPs", "the paper", "standard"), Seeds(5, "power"))


def test_every_claim_has_a_card_and_one_primary_check():
    for claim in load_catalogue().values():
        if claim.kind != "claim":
            continue
        assert claim.card is not None and claim.card.literal and claim.card.strongest, claim.id
        assert claim.card.home_regime.setting and claim.card.seeds.planned >= 2, claim.id
        assert sum(c.primary for c in claim.checks) == 1, claim.id
        assert claim.checks[claim.primary_index].primary


def test_a_bad_catalogue_entry_names_the_file_and_field():
    experiments = _experiments()
    good = Check(label="x", metric="test/accuracy", a={"regularizer.name": "dropout"}, b={"regularizer.name": "none"})
    with pytest.raises(ConfigError, match=r"claims/X1.experiments='nope'"):
        _check_claim(Claim("X1", "s", "src", ["nope"], [good], []), experiments)
    with pytest.raises(ConfigError, match=r"claims/X1.checks\[1\].margin"):
        _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [Check("x", "m", {}, {}, test="within")], []),
                     experiments)
    with pytest.raises(ConfigError, match=r"claims/X1.figure"):
        _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [good], [], figure="pie_chart"), experiments)
    # A greater / less check must say the smallest effect that matters, and why.
    banded = Check(label="x", metric="test/accuracy", a={"regularizer.name": "dropout"}, b={"regularizer.name": "none"},
                   smallest_effect=0.1, smallest_effect_reason="10 test images")
    _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [banded], [], card=CARD), experiments)
    # A claim needs its card, with a plan of at least two seeds and dated revisions.
    with pytest.raises(ConfigError, match=r"claims/X1.card=None"):
        _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [banded], []), experiments)
    few = dataclasses.replace(CARD, seeds=Seeds(1, "one"))
    with pytest.raises(ConfigError, match=r"claims/X1.card.seeds.planned=1"):
        _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [banded], [], card=few), experiments)
    undated = dataclasses.replace(CARD, revisions=[Revision("yesterday", "smallest effect changed", "why")])
    with pytest.raises(ConfigError, match=r"claims/X1.card.revisions\[1\].date='yesterday'"):
        _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [banded], [], card=undated), experiments)
    two_primaries = [dataclasses.replace(banded, primary=True), dataclasses.replace(banded, primary=True)]
    with pytest.raises(ConfigError, match=r"claims/X1.checks=.*at most one check may be primary"):
        _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], two_primaries, [], card=CARD), experiments)
    with pytest.raises(ConfigError, match=r"claims/X1.checks\[1\].smallest_effect"):
        _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [good], []), experiments)
    # No check may decide on an epoch chosen on the test set.
    selected_on_test = Check(label="x", metric="best_test/test/accuracy", a={"regularizer.name": "dropout"},
                             b={"regularizer.name": "none"}, smallest_effect=0.1, smallest_effect_reason="r")
    with pytest.raises(ConfigError, match="chosen on the test set"):
        _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [selected_on_test], []), experiments)
    with pytest.raises(ConfigError, match=r"claims/X1.experiments='quick'"):
        _check_claim(Claim("X1", "s", "src", {"quick": ["mlp_regularizers"]}, [banded], []), experiments)
    # A matched reading runs B at A's chosen values: it needs both sides, tuned, and no grid.
    against_constant = Check(label="x", metric="test/accuracy", a={"regularizer.name": "dropout"}, against=98.0,
                             smallest_effect=0.1, smallest_effect_reason="r", matched=["train.lr"])
    with pytest.raises(ConfigError, match=r"claims/X1.checks\[1\].matched=\['train.lr'\].*needs a check of tuned arms"):
        _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [against_constant], [], card=CARD), experiments)
    _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [dataclasses.replace(banded, matched=["train.lr"])], [],
                       card=CARD), experiments)
    # A misspelt experiment or regularizer in a selector would select no run, and read as a check this profile
    # does not run: refused, on either side and in a grid.
    for change, field in [({"a": {"regularizer.name": "dropuot"}}, r"a.regularizer.name='dropuot'"),
                          ({"b": {"experiment": ["mlp_regularizers", "map_mlp_regularizer"]}},
                           r"b.experiment='map_mlp_regularizer'"),
                          ({"grid": [{"regularizer.name": "l3"}]}, r"grid.regularizer.name='l3'")]:
        with pytest.raises(ConfigError, match=r"claims/X1.checks\[1\]." + field + r" is not allowed: no "):
            _check_claim(Claim("X1", "s", "src", ["mlp_regularizers"], [dataclasses.replace(banded, **change)], [],
                               card=CARD), experiments)


def test_every_metric_a_claim_checks_is_one_the_committed_runs_record():
    """A metric misspelt in a card would read "not measured in this profile" where the runs exist: every
    metric the shipped cards check is a column of some committed report's records."""
    from sparsebench.report.aggregate import load_records

    docs = Path(__file__).resolve().parents[1] / "docs"
    columns = set()
    for folder in ("claims-standard", "claims-home", "claims-home-d4", "claims-cnn"):
        for experiment in (docs / folder / "records").iterdir():
            if experiment.is_dir() and not experiment.name.endswith("-tuning"):  # trials measure less
                df, _ = load_records(experiment)
                columns |= set(df.columns)
    checked = {(claim.id, metric) for claim in load_catalogue().values() for c in claim.checks
               for metric in filter(None, (c.metric, c.metric_b))}
    # D4-CIFAR and S4-CIFAR run CIFAR-10, which this machine does not hold: their metrics are MNIST's too.
    assert {(cid, metric) for cid, metric in checked if metric not in columns} == set()


@pytest.mark.parametrize("profile", PROFILES)
def test_every_claim_plans_under_every_profile(profile):
    catalogue = load_catalogue()
    selected, left_out = choose(catalogue, "", profile)
    the_plan = plan(selected, profile, [])
    assert set(the_plan.jobs) == {e for c in selected for e in c.experiments_for(profile)}
    seeds = {job.config.seed for job in the_plan.all_jobs()}
    if profile == "standard":
        # Every experiment runs at least 5 seeds, and as many as the cards plan of the claims whose primary
        # check reads it (a card's count is its primary check's power; K3's 29 and K4's 19 excepted: their
        # cards say the profile cannot afford them). K1's usual-rate side checks read dropout_rates at its 5.
        runs = the_plan.planned_runs()

        def primary_reads(claim) -> set[str]:
            primary = claim.checks[claim.primary_index]
            own = runs[runs["experiment"].isin(claim.experiments_for(profile))]
            read = set()
            for where in [*primary.a_settings(), *([primary.b] if primary.b is not None else [])]:
                try:
                    read |= set(select(own, where)["experiment"])
                except KeyError:
                    continue
            return read
        reads = {c.id: primary_reads(c) for c in selected if c.checks}
        assert "dropout_rates" not in reads["K1"] and {"mlp_kwinners", "mlp_regularizers"} <= reads["K1"]
        for experiment, jobs in the_plan.jobs.items():
            ran = {job.config.seed for job in jobs}
            planned = max((c.card.seeds.planned for c in selected
                           if experiment in reads.get(c.id, ()) and c.id not in ("K3", "K4")), default=5)
            assert ran == set(range(max(5, planned))), experiment
    elif profile in ("smoke", "paper"):  # the map profile's seeds are its experiments' (issue 21)
        assert seeds == ({0, 1} if profile == "smoke" else set(range(10)))
    if profile != "paper":
        assert {"D4-CIFAR", "S4-CIFAR"} <= {c.id for c in left_out}
    # The paper profile runs the papers' networks as the papers did (the sparse nets' batch-4 first epoch), on
    # every training image but the 10,000 held out for validation, as every claim's experiments.
    if profile == "paper":
        sparse = [job for job in the_plan.all_jobs() if job.experiment == "kwinners_sparse_cnn2"]
        assert sparse and all(job.config.train.first_epoch_batch_size == 4 for job in sparse)
        assert all(job.config.dataset.val_size == 10000 and job.config.dataset.train_subset is None for job in sparse)
    if profile == "standard":
        assert all(job.config.dataset.name == "mnist" for job in the_plan.all_jobs())


def test_command_line_parsing_and_bad_input():
    own, overrides = parse(["profile=standard", "claims=D1,K1", "jobs=2", "dataset.root=/data"])
    assert own == {"profile": "standard", "claims": "D1,K1", "jobs": "2", "launcher": "", "out": "", "run": True}
    assert overrides == ["dataset.root=/data"]
    with pytest.raises(SparsebenchError, match="profile='fast'"):
        parse(["profile=fast"])
    with pytest.raises(SparsebenchError, match="jobs=0 is not allowed"):
        parse(["jobs=0"])
    with pytest.raises(SparsebenchError, match=r"^tune=null is not allowed: tune is a config group .*conf/tune/\)"):
        parse(["profile=map", "tune=null"])
    with pytest.raises(SparsebenchError, match=r"^dataset=mnist,null is not allowed: dataset is a config group"):
        parse(["profile=map", "dataset=mnist,null"])  # a null among a sweep's values too
    assert parse(["profile=map", "map_axes=wide"])[1] == ["map_axes=wide"]  # the map's grid: a setting of every run
    # A report's header names what changes numbers or which runs are planned, not where runs go.
    assert shown_settings(["map_axes=wide", "results_dir=/x", "tune.confirm_near_ties=true", "device=cpu", "seed=3"]) \
        == ["map_axes=wide", "tune.confirm_near_ties=true", "seed=3"]
    assert parse([])[0]["jobs"] == "auto" and parallel_jobs("3", []) == 3
    assert 1 <= parallel_jobs("auto", ["device=cpu"]) <= 8
    with pytest.raises(SparsebenchError, match="claims=Z9"):
        choose(load_catalogue(), "D1,Z9", "smoke")


@pytest.mark.system
def test_smoke_claims_end_to_end(tmp_path):
    """Every claim of the smoke profile, on a budget shrunk further: the report is written, every check
    found its metric and both sides of runs, and every figure exists."""
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "sparsebench.claims.cli", "profile=smoke", f"results_dir={results}",
                           "dataset.train_subset=400", "dataset.test_subset=200", "eval.pixel_levels=[0.0,0.2]",
                           "eval.gaussian_levels=[0.0,0.3]", "eval.salt_pepper_levels=[0.0,0.2]",
                           "prune.fractions=[0.5,0.9,0.99]"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = results / "claims-smoke"
    report = json.loads((out / "claims.json").read_text())
    verdicts = {c["id"]: c for c in report["claims"]}
    for claim_id in CLAIM_IDS:
        claim = verdicts[claim_id]
        assert claim["verdict"] in ("supported", "refuted", "inconclusive"), (claim_id, claim["reason"])
        for check in claim["checks"]:
            assert "no column" not in check["reason"] and "no run matches" not in check["reason"], (claim_id, check)
            assert check["n_a"] == 2
        for figure in claim["figures"]:
            assert (out / figure).stat().st_size > 1000
    assert verdicts["S2"]["verdict"] == "supported"  # q = 2 trains exactly like dropout, seed by seed
    assert all(c["test"] == "identical" and c["largest_difference"] == 0.0 for c in verdicts["S2"]["checks"])
    assert verdicts["D4-CIFAR"]["verdict"] == "not run"
    text = (out / "CLAIMS.md").read_text()
    assert "| D1 |" in text and "## K2:" in text and "](figures/D1_near_zero_curves.png)" in text
    assert "data:image/png;base64," in (out / "claims.html").read_text()
    # A second call reuses every record.
    again = subprocess.run([sys.executable, "-m", "sparsebench.claims.cli", "profile=smoke", f"results_dir={results}",
                            "claims=D1", "dataset.train_subset=400", "dataset.test_subset=200",
                            "eval.pixel_levels=[0.0,0.2]", "eval.gaussian_levels=[0.0,0.3]",
                            "eval.salt_pepper_levels=[0.0,0.2]", "prune.fractions=[0.5,0.9,0.99]"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "8 completed before, 0 to run" in again.stderr


def test_a_bad_override_stops_the_command_before_any_run(tmp_path, capsys):
    status = call_command(claims_main, "profile=smoke", "claims=D1", f"results_dir={tmp_path}", "train.lr=-1")
    stderr = capsys.readouterr().err
    assert status == 2
    assert "train.lr=-1" in stderr and len(stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_run_false_reports_from_the_records_there_are_without_running(tmp_path, capsys):
    status = call_command(claims_main, "profile=smoke", "claims=D4", "run=false", f"results_dir={tmp_path}")
    stderr = capsys.readouterr().err
    assert status == 0, stderr[-2000:]
    assert "smoke profile: these verdicts show that the pipeline runs end to end, not what the papers" in stderr
    report = json.loads((tmp_path / "claims-smoke" / "claims.json").read_text())
    assert report["counts"] == {"reused": 0, "not run": 8}
    assert [c["verdict"] for c in report["claims"]] == ["not run"]
    assert not list(tmp_path.glob("mlp_regularizers/*/result.json"))  # nothing was run


def test_the_report_names_the_settings_the_command_gave_every_run(tmp_path, capsys):
    """Two reports of one profile's records differ by what the command added (the near-tie readings): the
    header says which, and the folder the records are in is not one of them."""
    data = tmp_path / "data"  # the embedded subset's own files, in a folder of this machine
    shutil.copytree(Path(sparsebench.data.__file__).parent / "embedded", data)
    status = call_command(claims_main, "profile=smoke", "claims=D4", "run=false", "tune.confirm_near_ties=true",
                          "train.epochs=2", f"dataset.root={data}", "device=cpu", "threads=1", f"results_dir={tmp_path}")
    assert status == 0, capsys.readouterr().err[-2000:]
    report = tmp_path / "claims-smoke"
    page = (report / "CLAIMS.md").read_text()
    header = "Profile `smoke` with `tune.confirm_near_ties=true train.epochs=2`, "
    assert any(line.startswith(header) for line in page.splitlines()[:8])
    assert json.loads((report / "claims.json").read_text())["settings"] == ["tune.confirm_near_ties=true",
                                                                             "train.epochs=2"]
    # Where and how the runs went (the data's folder, the device, threads) is not what made the report differ,
    # and a committed page shows no folder of the machine that made it.
    for name in ("CLAIMS.md", "claims.json", "claims.html"):
        text = (report / name).read_text()
        assert str(data) not in text and "device=cpu" not in text and "threads=1" not in text


def test_a_claim_the_profile_does_not_hold_is_named_once_not_given_a_row(tmp_path, capsys):
    # D4-CIFAR is a paper-profile claim: asked of the smoke profile it is not run, said in one line.
    status = call_command(claims_main, "profile=smoke", "claims=D4,D4-CIFAR", "run=false", f"results_dir={tmp_path}")
    out = capsys.readouterr().out
    assert status == 0
    line = "Not run here: D4-CIFAR (not part of the smoke profile)."
    assert line in out.splitlines() and not any(row.startswith("D4-CIFAR ") for row in out.splitlines())
    report = tmp_path / "claims-smoke"
    data = json.loads((report / "claims.json").read_text())
    assert [(c["id"], c.get("outside_profile", False)) for c in data["claims"]] == [("D4", False), ("D4-CIFAR", True)]
    page = (report / "CLAIMS.md").read_text()
    assert line in page and "| D4-CIFAR |" not in page and "## D4-CIFAR" not in page and "## D4:" in page
    assert line in (report / "claims.html").read_text() and 'id="D4-CIFAR"' not in (report / "claims.html").read_text()


# K4's six arms, by the settings that make each (the configs, not the checks' selectors).
K4_ARMS = {
    "dense": lambda c: c["regularizer.name"] == "none" and not c["experiment"].endswith("_dense_narrow"),
    "dense, as many nonzeros": lambda c: c["regularizer.name"] == "none" and c["experiment"].endswith("_dense_narrow"),
    "dropout": lambda c: c["regularizer.name"] == "dropout",
    "kWTA only": lambda c: c["regularizer.name"] == "kwinners" and c["regularizer.percent_on"] == [0.1]
    and c["regularizer.weight_density"] == 1.0,
    "sparse weights only": lambda c: c["regularizer.name"] == "kwinners" and c["regularizer.percent_on"] == [1.0]
    and c["regularizer.weight_density"] == 0.5,
    "both": lambda c: c["regularizer.name"] == "kwinners" and c["regularizer.percent_on"] == [0.1]
    and c["regularizer.weight_density"] == 0.5,
}


@pytest.mark.parametrize("profile,seeds", [("smoke", 2), ("standard", 5), ("paper", 10)])
def test_k4_plans_six_arms_and_each_check_compares_the_two_it_names(profile, seeds):
    from sparsebench.report.aggregate import select

    k4 = load_catalogue()["K4"]
    runs = plan([k4], profile, []).planned_runs()
    arm = runs.apply(lambda row: [name for name, test in K4_ARMS.items() if test(row)], axis=1)
    assert (arm.map(len) == 1).all()  # every run is one arm, and one only
    arm = arm.str[0]
    assert arm.value_counts().to_dict() == {name: seeds for name in K4_ARMS}
    compared = [(ch.metric, *(sorted(set(arm[select(runs, side).index])) for side in (ch.a, ch.b))) for ch in k4.checks]
    assert compared == [
        ("continual/average_accuracy", ["both"], ["dense"]),
        ("continual/average_accuracy", ["both"], ["dropout"]),
        ("continual/average_accuracy", ["both"], ["dense, as many nonzeros"]),
        ("continual/average_accuracy", ["kWTA only"], ["dense"]),
        ("continual/average_accuracy", ["sparse weights only"], ["dense"]),
        ("continual/forgetting", ["both"], ["dense"]),
        ("continual/forgetting", ["both"], ["dropout"]),
        ("continual/normalised_forgetting", ["both"], ["dense"]),
        ("continual/normalised_forgetting", ["both"], ["dropout"]),
    ]
    assert k4.checks[k4.primary_index].metric == "continual/average_accuracy" and k4.primary_index == 0
    assert all(ch.smallest_effect is not None and ch.smallest_effect_reason for ch in k4.checks)


def test_k4_run_false_composes_every_arm_without_running(tmp_path, capsys):
    status = call_command(claims_main, "profile=smoke", "claims=K4", "run=false", f"results_dir={tmp_path}")
    assert status == 0, capsys.readouterr().err[-2000:]
    report = json.loads((tmp_path / "claims-smoke" / "claims.json").read_text())
    assert report["counts"] == {"reused": 0, "not run": 12}  # 6 arms x 2 smoke seeds
    assert [c["verdict"] for c in report["claims"]] == ["not run"]
    assert not list(tmp_path.glob("continual_*/*/result.json"))


def test_a_claim_file_with_a_yaml_syntax_error_is_refused_in_one_line(tmp_path, monkeypatch):
    from sparsebench.claims import catalogue
    from sparsebench.errors import SparsebenchError

    (tmp_path / "claims").mkdir()
    (tmp_path / "experiment").mkdir()
    (tmp_path / "claims" / "X1.yaml").write_text("id: X1\ncard:\n  reported_as: a: colon\n")
    monkeypatch.setattr(catalogue.resources, "files", lambda package: tmp_path)
    with pytest.raises(SparsebenchError, match=r"^conf/claims/X1.yaml: mapping values are not allowed .*\(line 3, column 17\)") as error:
        catalogue.load_catalogue()
    assert "\n" not in str(error.value)


def test_s2_s_row_says_identical_by_construction():
    from pathlib import Path

    from sparsebench.claims import page
    from sparsebench.claims.checks import Verdict
    from sparsebench.claims.evaluate import ClaimResult

    s2 = load_catalogue()["S2"]
    exact = Verdict("train/loss", "identical", "supported", 0.0, float("nan"), float("nan"), 1.0, 0.1, 5, 1.0, 0.1, 5,
                    largest_difference=0.0)
    row = page._summary_row(ClaimResult(s2, "supported", [exact, exact]), Path("."))
    assert row.notes.startswith("identical by construction")


def test_k1_to_k3_home_is_the_paper_networks_each_arm_tuned_alike():
    # K1-K3 under the paper profile read the P-KW table's networks (the paper's own settings) with each
    # network's learning rate tuned on validation: the same number of points an arm, the paper's rate among them,
    # and nothing else changed but the name, the tuning and the best-test copy the claims do not read.
    from sparsebench.sweep import compose_jobs, hydra_configs

    catalogue = load_catalogue()
    home = sorted({e for claim in ("K1", "K2", "K3") for e in catalogue[claim].experiments_for("paper")})
    assert home == ["kwinners_home_dense_cnn2", "kwinners_home_dense_cnn2_dropout", "kwinners_home_sparse_cnn2"]

    def composed(experiment: str) -> dict:
        with hydra_configs():
            jobs = compose_jobs([f"experiment={experiment}", "profile=paper"], multirun=True)
        assert [cfg.seed for _, cfg in jobs] == list(range(10))  # the paper's 10 seeds
        return dataclasses.asdict(jobs[0][1])

    unchanged = lambda tree: {k: v for k, v in tree.items() if k not in ("name", "tune", "eval")}  # noqa: E731
    for experiment in home:
        tuned, paper = composed(experiment), composed(experiment.replace("_home", ""))
        assert unchanged(tuned) == unchanged(paper)
        assert {**tuned["eval"], "best_test": paper["eval"]["best_test"]} == paper["eval"]
        arms = tuned["tune"]["arms"]
        assert len(arms) == 1 and arms[0]["arm"] == {} and list(arms[0]["space"]) == ["train.lr"]
        grid = arms[0]["space"]["train.lr"]
        assert len(grid) == 6 and paper["train"]["lr"] in grid and not tuned["tune"]["shared"]
        assert tuned["tune"]["metric"].startswith("validation/")
