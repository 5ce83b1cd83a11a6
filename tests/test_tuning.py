"""Each arm tuned alike on the validation split (claims.tuning): the grids, the successive-halving rungs,
the choice read from the trials' records (never their test metrics), the final runs planned from it, and
the checks that read tuned arms first and the shared setting beside them."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparsebench.claims import tuning
from sparsebench.claims.catalogue import load_catalogue
from sparsebench.claims.evaluate import evaluate
from sparsebench.claims.plan import deriver, plan, tune
from sparsebench.claims.tuning import table
from sparsebench.errors import ConfigError, SparsebenchError
from sparsebench.records.record import RunRecord
from sparsebench.report import plots
from sparsebench.schemas import TuneArm, TuneConfig

# What these reports count and say is tested here; their figures are tested in tests/report.
pytestmark = pytest.mark.usefixtures("figures_not_rendered")

# The standard profile's tuned MLP experiment, shrunk to the embedded data (its split must fit). The grid's
# own choice: the rounds beyond its edges (tune.extend_edges) have tests of their own, with GRID_AND_BEYOND.
GRID_AND_BEYOND = ["dataset=embedded", "dataset.val_size=500"]
SMALL = [*GRID_AND_BEYOND, "tune.extend_edges=0"]


@pytest.fixture(autouse=True, scope="module")
def own_cache(tmp_path_factory):
    """One plan cache for this module's tests (they compose the same experiments and trials, which the
    cache keeps; its own correctness is tests/test_plan.py's)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One results folder for the module (nothing is written there: the trials' records are planted)."""
    return tmp_path_factory.mktemp("results")


class Record:
    """A trial's run folder that holds a completed (or failed) record with the given metrics."""

    def __init__(self, metrics: dict | None, status: str = "completed"):
        self.record = RunRecord(status=status, run_id="x", experiment="x", seed=0, config={}, data={},
                                environment={}, metrics=metrics)

    def checked_result(self):
        return self.record, None

    def status(self):
        return self.record.status


def planted(scores):
    """An execute that, instead of training, gives each trial the record ``scores(job)`` returns."""
    def execute(stage):
        for job in stage.all_jobs():
            job.__dict__["run_dir"] = Record(*scores(job))
        return {"completed": len(stage.all_jobs())}
    return execute


def d4_plan(results, profile="standard"):
    return plan([load_catalogue()["D4"]], profile, [*SMALL, f"results_dir={results}"])


def test_every_arm_gets_the_same_grid_size_and_the_rungs_the_experiment_declares(results):
    the_plan = d4_plan(results)
    work = the_plan.tunings["mlp_regularizers"]
    assert [arm.label for arm in work.arms] == ["regularizer=none", "regularizer=l1", "regularizer=l2",
                                                "regularizer=dropout"]
    assert [len(arm.points) for arm in work.arms] == [9, 9, 9, 9]
    # conf/tune/halving.yaml: a quarter of mlp_regularizers' 20 epochs, then all 20.
    assert [work.rung_epochs(arm) for arm in work.arms] == [[5, 20]] * 4
    tune(the_plan,
                planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    # Successive halving with eta 3: ceil(9 / 3) = 3 of each arm's 9 points go on.
    assert [[len(rung) for rung in arm.trials] for arm in work.arms] == [[9, 3]] * 4
    trial = work.arms[3].trials[0][0].job.config
    assert (trial.seed, trial.train.epochs, trial.name) == (1000, 5, "mlp_regularizers-tuning")
    assert (trial.eval.noise, trial.prune.fractions, trial.eval.train_mode_passes, trial.eval.early_stop,
            trial.eval.test_curve) == ([], [], 0, False, False)
    # The final runs score the test split along training; the trials (above) do not.
    finals = the_plan.all_jobs()
    assert finals and all(job.config.eval.test_curve and job.config.seed != 1000 for job in finals)


def test_the_choice_is_made_on_validation_where_the_test_set_disagrees(results):
    """Validation accuracy rises with the learning rate and test accuracy falls with it: each arm must
    choose its largest rate among the points that went on (never its smallest, the test set's pick)."""
    the_plan = d4_plan(results)
    tune(the_plan,
                planted(lambda job: ({"validation": {"accuracy": 90 + job.config.train.lr},
                                      "test": {"accuracy": 99 - job.config.train.lr}},)))
    work = the_plan.tunings["mlp_regularizers"]
    chosen = {arm.label: arm.chosen for arm in work.arms}
    # By hand: none's grid [0.0125 .. 0.3]: the three largest rates go on, 0.3 wins; dropout's grid is
    # lr {0.05, 0.1, 0.2} x p {0.05, 0.1, 0.25}: the three points at 0.2 tie on validation and the grid's
    # order (p 0.05 first) breaks the tie; L1's lr {0.05, 0.1, 0.2}: 0.2.
    assert chosen["regularizer=none"] == {"train.lr": 0.3}
    assert chosen["regularizer=dropout"] == {"train.lr": 0.2, "regularizer.p": 0.05}
    assert chosen["regularizer=l1"] == {"train.lr": 0.2, "regularizer.lam": 1e-5}
    # The final runs are the arm's sweep (every planned seed) at its choice.
    finals = [job for job in the_plan.jobs["mlp_regularizers"] if job.settings == ("tuned",)]
    none = [job.config for job in finals if job.config.regularizer.name == "none"]
    assert sorted(c.seed for c in none) == list(range(9)) and {c.train.lr for c in none} == {0.3}
    dropout = [job.config for job in finals if job.config.regularizer.name == "dropout"]
    assert {(c.train.lr, c.regularizer.p) for c in dropout} == {(0.2, 0.05)}


def test_an_arm_that_chooses_the_shared_setting_reuses_those_runs(results):
    """mlp_regularizers' own values are lr 0.05 and dropout p 0.5: an arm whose best point is that is planned
    once, under both settings; one whose best point is not (dropout's grid has no p 0.5) twice. The shared
    setting, a secondary row, runs each arm's first 5 seeds (tune.shared_seeds, conf/tune/halving.yaml)."""
    the_plan = d4_plan(results)
    tune(the_plan,
                planted(lambda job: ({"validation": {"accuracy": -abs(job.config.train.lr - 0.05)
                                                     - abs(getattr(job.config.regularizer, "p", 0.5) - 0.5)}},)))
    jobs = the_plan.jobs["mlp_regularizers"]
    def seeds(name):
        return sorted((job.config.seed, job.settings) for job in jobs if job.config.regularizer.name == name)
    both, tuned = ("shared", "tuned"), ("tuned",)
    assert seeds("none") == [(s, both) for s in range(5)] + [(s, tuned) for s in range(5, 9)]
    dropout = [job for job in jobs if job.config.regularizer.name == "dropout"]
    assert sorted((job.settings, job.config.seed) for job in dropout) == \
        [(("shared",), s) for s in range(5)] + [(tuned, s) for s in range(9)]
    # L1 and L2 are read only by checks that plan 5 seeds (tune.arms[].seeds: 5): the sweep's first 5 (here
    # their choice is the shared setting, lr 0.05 and the first strength, so one run a seed serves both),
    # and no other of the sweep's 9 seeds is planned for them at all.
    for name in ("l1", "l2"):
        assert seeds(name) == [(s, both) for s in range(5)]
    planned = the_plan.planned_runs()  # a row per run and setting it is read under
    assert planned.groupby(["regularizer.name", "setting"]).size().to_dict() == {
        ("dropout", "shared"): 5, ("dropout", "tuned"): 9, ("l1", "shared"): 5, ("l1", "tuned"): 5,
        ("l2", "shared"): 5, ("l2", "tuned"): 5, ("none", "shared"): 5, ("none", "tuned"): 9}
    # By hand: the closest p to 0.5 in [0.05, 0.1, 0.25] is 0.25, at lr 0.05.
    assert {(job.config.train.lr, job.config.regularizer.p) for job in dropout if job.settings == ("tuned",)} == {(0.05, 0.25)}


def test_a_failed_trial_is_not_chosen_and_a_missing_one_leaves_the_tuning_unfinished(results):
    the_plan = d4_plan(results)

    def scores(job):  # the largest rate diverges (a failed record); the others score by their rate
        if job.config.train.lr >= 0.2:
            return None, "failed"
        return {"validation": {"accuracy": job.config.train.lr}}, "completed"

    tune(the_plan, planted(scores))
    assert the_plan.tunings["mlp_regularizers"].arms[0].chosen == {"train.lr": 0.15}
    assert the_plan.tuning_unfinished() == {}

    # An arm whose every trial fails has no choice, and the tuning says so.
    broken = d4_plan(results)
    tune(broken, planted(lambda job: (None, "failed") if job.config.regularizer.name == "l2"
                                            else ({"validation": {"accuracy": 1.0}}, "completed")))
    assert broken.tunings["mlp_regularizers"].arms[2].chosen is None
    assert "every trial of regularizer=l2 failed" in broken.tuning_unfinished()["mlp_regularizers"]

    again = d4_plan(results)
    tune(again, None)  # run=false on an empty folder: nothing to choose from
    assert "not finished" in again.tuning_unfinished()["mlp_regularizers"]
    assert all(job.settings == ("shared",) for job in again.jobs["mlp_regularizers"])


def test_unequal_budgets_and_test_metrics_are_refused_in_one_line():
    with pytest.raises(ConfigError) as error:
        TuneConfig(arms=[TuneArm({"regularizer": "none"}, {"train.lr": [0.01, 0.1]}),
                         TuneArm({"regularizer": "dropout"}, {"train.lr": [0.01, 0.1], "regularizer.p": [0.2, 0.5]})])
    assert "same number of points" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ConfigError) as error:
        TuneConfig(arms=[TuneArm({}, {"train.lr": [0.1]})], metric="test/accuracy")
    assert "never the test set" in str(error.value)
    for seeds in (0, 2.5, True):
        with pytest.raises(ConfigError) as error:
            TuneArm({"regularizer": "l1"}, {"train.lr": [0.1]}, seeds=seeds)
        assert f"arms[].seeds={seeds}" in str(error.value) and "\n" not in str(error.value)
        with pytest.raises(ConfigError) as error:
            TuneConfig(arms=[TuneArm({}, {"train.lr": [0.1]})], shared_seeds=seeds)
        assert f"shared_seeds={seeds}" in str(error.value) and "\n" not in str(error.value)


def test_seeds_given_on_the_command_line_are_run_in_full_by_every_arm(results):
    """The profile's caps (L1 and L2 on 5 seeds, the shared row on 5) are for its own seeds: a user who asks
    for seeds 0-6 gets every one of them in every arm and setting, and a cap read from the config (the
    sweep's order reversed) takes the lowest seeds, not the first written."""
    score = planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},))
    given = plan([load_catalogue()["D2"]], "standard", [*SMALL, "seed=0,1,2,3,4,5,6", f"results_dir={results}"])
    tune(given, score)
    planned = given.planned_runs()
    assert planned.groupby(["regularizer.name", "setting"]).size().min() == 7
    assert set(planned.groupby(["regularizer.name", "setting"]).size().index.get_level_values(1)) >= {"shared", "tuned"}
    # The experiment's jobs in the opposite order (a sweep written 8, 7, ..., 0): still the lowest 5 seeds.
    every = plan([load_catalogue()["D2"]], "standard", [*SMALL, "seed=0,1,2,3,4,5,6,7,8", f"results_dir={results}"])
    backwards = every.jobs["mlp_regularizers"][::-1]
    assert len([job for job in backwards if job.config.regularizer.name == "l2"]) == 9
    assert backwards[0].config.seed == 8
    work = tuning.start("mlp_regularizers", backwards)
    l2 = next(arm for arm in work.arms if arm.label == "regularizer=l2")
    assert sorted(job.config.seed for job in l2.jobs) == [0, 1, 2, 3, 4]
    dropout = next(arm for arm in work.arms if arm.label == "regularizer=dropout")
    assert [job.config.seed for job in tuning.shared_runs(work, dropout.jobs)] == [4, 3, 2, 1, 0]


def test_a_primary_check_that_reads_the_shared_setting_keeps_every_seed_there(results):
    """S2 and S3 decide on the shared setting itself (their primary checks): sparseout_q's shared runs are
    every seed of every q (tune.shared_seeds: null there)."""
    seven = "seed=0,1,2,3,4,5,6"  # more seeds than the 5 that other experiments' shared rows run
    the_plan = plan([load_catalogue()["S3"]], "standard", [*SMALL, seven, f"results_dir={results}"])
    tune(the_plan, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    shared = [job for job in the_plan.jobs["sparseout_q"] if "shared" in job.settings]
    assert sorted((job.config.regularizer.q, job.config.seed) for job in shared) == \
        [(q, s) for q in (1.0, 1.5, 2.0, 2.5, 3.0) for s in range(7)]


def test_an_arm_named_by_a_boolean_sweep_value_gets_its_own_grid(results):
    """Hydra's sweeper writes a boolean sweep value as Python does (regularizer.spatial=False); the arm's entry
    in tune.arms, written in YAML (false), is that arm's all the same, and the other entry the other arm's."""
    spec = TuneConfig(arms=[TuneArm({"regularizer.spatial": False}, {"regularizer.p": [0.3]}),
                            TuneArm({"regularizer.spatial": True}, {"regularizer.p": [0.05]})])
    assert tuning.arm_space(spec, {"regularizer.spatial": "False"}).space == {"regularizer.p": [0.3]}
    assert tuning.arm_space(spec, {"regularizer.spatial": "true"}).space == {"regularizer.p": [0.05]}
    with pytest.raises(SparsebenchError, match="no entry for the arm"):
        tuning.arm_space(spec, {"regularizer.spatial": "maybe"})
    # G1's two kinds of dropout, as the standard profile plans them: each its own p grid (conf/experiment/spatial_dropout.yaml).
    the_plan = plan([load_catalogue()["G1"]], "standard", [*SMALL, f"results_dir={results}"])
    ps = {arm.label: sorted({point["regularizer.p"] for point in arm.points})
          for arm in the_plan.tunings["spatial_dropout"].arms}
    assert ps == {"regularizer.spatial=False": [0.1, 0.2, 0.3], "regularizer.spatial=True": [0.05, 0.1, 0.2]}


def test_a_setting_given_on_the_command_line_that_an_arm_tunes_is_refused(results):
    with pytest.raises(SparsebenchError) as error:
        plan([load_catalogue()["D4"]], "standard", [*SMALL, "train.lr=0.1", f"results_dir={results}"])
    assert str(error.value).startswith("train.lr=0.1: experiment mlp_regularizers tunes train.lr")


def _rows(setting: str, dropout: list[float], none: list[float]) -> list[dict]:
    return [{"experiment": "mlp_regularizers", "regularizer.name": name, "seed": seed, "test/accuracy": value,
             "setting": setting, "group": f"{setting}-{name}", "run_id": f"{setting}{name}{seed}"}
            for name, values in (("dropout", dropout), ("none", none)) for seed, value in enumerate(values)]


def test_the_primary_check_reads_the_tuned_arms_and_the_shared_setting_is_a_row_beside_it(tmp_path):
    tuned_dropout, tuned_none = [98.9, 99.0, 98.95, 99.05, 98.85], [98.4, 98.5, 98.45, 98.55, 98.35]
    shared_dropout, shared_none = [98.1, 98.2, 98.15, 98.25, 98.05], [98.45, 98.5, 98.55, 98.4, 98.6]
    df = pd.DataFrame(_rows("tuned", tuned_dropout, tuned_none) + _rows("shared", shared_dropout, shared_none))
    result = evaluate(load_catalogue()["D4"], df, tmp_path, {}, "standard")
    primary, shared = result.checks[0], result.checks[-1]
    assert result.claim.checks[-1].setting == "shared" and "shared setting" in result.claim.checks[-1].label
    assert primary.n_a == 5 and math.isclose(primary.mean_a, np.mean(tuned_dropout))
    assert math.isclose(primary.effect, np.mean(tuned_dropout) - np.mean(tuned_none))
    assert math.isclose(shared.effect, np.mean(shared_dropout) - np.mean(shared_none))
    assert (primary.verdict, shared.verdict, shared.refuted_as) == ("supported", "refuted", "opposite")
    assert result.verdict == "supported"


def test_no_shared_setting_row_where_the_plan_runs_nothing_at_the_shared_setting(tmp_path):
    """A regime map plans tuned arms only: the untuned row beside the primary would only say that nothing
    ran for it. Where the plan has shared runs (the standard profile), the row is there, with or without
    their records."""
    tuned_dropout, tuned_none = [98.9, 99.0, 98.95, 99.05, 98.85], [98.4, 98.5, 98.45, 98.55, 98.35]
    df = pd.DataFrame(_rows("tuned", tuned_dropout, tuned_none))
    planned_tuned = df[["experiment", "regularizer.name", "seed", "setting"]]
    claim = load_catalogue()["D4"]
    result = evaluate(claim, df, tmp_path / "a", {}, "standard", planned_tuned)
    assert [c.setting for c in result.claim.checks] == [c.setting for c in claim.checks]
    assert all("shared setting" not in c.label for c in result.claim.checks)
    planned_both = pd.concat([planned_tuned, planned_tuned.assign(setting="shared")])
    result = evaluate(claim, df, tmp_path / "b", {}, "standard", planned_both)
    assert result.claim.checks[-1].setting == "shared" and result.checks[-1].n_a == 0  # planned, not run: said


def test_a_matched_check_plans_b_at_a_chosen_learning_rate_once_and_not_in_a_map(results, tmp_path, mnist_dir):
    """D1 reads dropout against the dense net also with the dense net at dropout's chosen learning rate
    (its card's matched: [train.lr]). Planted: validation peaks at lr 0.2 for dropout (with p 0.1) and at 0.05
    for the dense net, so by hand the dense net's 9 seeds are planned again at 0.2, and dropout's 9 final runs
    are read under the matched setting too (no second copy of them)."""
    the_plan = plan([load_catalogue()["D1"]], "standard", [*SMALL, f"results_dir={results}"])
    best = {"dropout": (0.2, 0.1), "none": (0.05, None)}

    def score(job):
        lr, p = best[job.config.regularizer.name] if job.config.regularizer.name in best else (0.1, None)
        off = abs(job.config.train.lr - lr) + (abs(job.config.regularizer.p - p) if p is not None else 0)
        return ({"validation": {"accuracy": 99 - off}},)
    tune(the_plan, planted(score))
    primary = load_catalogue()["D1"].checks[0]  # dropout (of mlp_regularizers) against none, matched on train.lr
    matched = tuning.matched_setting(primary.a, primary.b, ["train.lr"])
    jobs = [job for job in the_plan.jobs["mlp_regularizers"] if matched in job.settings]
    none = sorted((job.config.seed, job.config.train.lr) for job in jobs if job.config.regularizer.name == "none")
    assert none == [(seed, 0.2) for seed in range(9)]
    assert all(job.settings == (matched,) for job in jobs if job.config.regularizer.name == "none")
    dropout = [job for job in jobs if job.config.regularizer.name == "dropout"]
    assert len(dropout) == 9 and all(job.settings == ("tuned", matched) for job in dropout)
    assert {(job.config.train.lr, job.config.regularizer.p) for job in dropout} == {(0.2, 0.1)}
    ids = [job.run_id for job in the_plan.all_jobs()]
    assert len(ids) == len(set(ids))
    # The map profile plans no matched runs: its cells judge the primary check only.
    mapped = plan([load_catalogue()["D1"]], "map", [f"dataset.root={mnist_dir}", f"results_dir={tmp_path}"])
    assert mapped.matched == {}


def test_a_matched_check_whose_arms_are_not_two_arms_of_one_tuned_experiment_is_refused_before_any_run(results):
    """B in another experiment (k-winners is not an arm of mlp_regularizers), or a setting the arms' configs lack,
    would plan nothing and show no row: the plan refuses it in one line naming the card's field."""
    claim = load_catalogue()["D1"]
    primary = claim.checks[claim.primary_index]
    for change in ({"b": {"regularizer.name": "kwinners"}}, {"matched": ["train.lrr"]}):
        bad = replace(claim, checks=[replace(primary, **change), *claim.checks[1:]])
        with pytest.raises(SparsebenchError) as error:
            plan([bad], "standard", [*SMALL, f"results_dir={results}"])
        message = str(error.value)
        assert message.startswith("claims/D1.checks[1].matched=") and "two arms of one tuned experiment" in message
        assert "\n" not in message
    # Two matched readings with the same A (D1: dropout against none; D2: dropout against L2) plan apart.
    both = plan([claim, load_catalogue()["D2"]], "standard", [*SMALL, f"results_dir={results}"])
    assert [request[1] for request in both.matched["mlp_regularizers"]] == [{"regularizer.name": "none"},
                                                                          {"regularizer.name": "l2"}]


def arm_rows(metric: str, name: str, lr: float, values: list[float], settings: list[str]) -> list[dict]:
    """Records of one arm of mlp_regularizers at one learning rate, one per seed and setting it is read under."""
    return [{"experiment": "mlp_regularizers", "regularizer.name": name, "train.lr": lr, "seed": seed,
             metric: value, "setting": setting, "group": f"{name}{lr}", "run_id": f"{name}{lr}{seed}"}
            for seed, value in enumerate(values) for setting in settings]


def test_the_matched_row_reads_b_at_a_chosen_rate_and_can_disagree_with_the_tuned_comparison(tmp_path):
    """Constructed: the tuned dropout nets (lr 0.1) are sparser in shape than the tuned dense nets (lr 0.05) by
    0.04, but the dense nets at lr 0.1 are as sparse as dropout's: the primary is supported, the matched row
    (the dense nets at dropout's rate) negligible, each with its own runs' mean."""
    primary = load_catalogue()["D1"].checks[0]  # dropout (of mlp_regularizers) against none, matched on train.lr
    matched = tuning.matched_setting(primary.a, primary.b, ["train.lr"])
    dropout = [0.302, 0.304, 0.300, 0.303, 0.301]
    none_own, none_at_dropouts = [0.262, 0.264, 0.263, 0.265, 0.261], [0.3025, 0.3015, 0.3035, 0.3005, 0.302]

    def rows(name, lr, values, settings):
        return arm_rows("weights/final/global/hoyer", name, lr, values, settings)
    df = pd.DataFrame(rows("dropout", 0.1, dropout, ["tuned", matched]) + rows("none", 0.05, none_own, ["tuned"])
                      + rows("none", 0.1, none_at_dropouts, [matched]))
    planned = df[["experiment", "regularizer.name", "train.lr", "seed", "setting"]]
    result = evaluate(load_catalogue()["D1"], df, tmp_path, {}, "standard", planned)
    number = next(i for i, c in enumerate(result.claim.checks) if c.setting == matched)
    row, primary = result.checks[number], result.checks[0]
    assert "B run at A's chosen train.lr" in result.claim.checks[number].label
    assert math.isclose(primary.effect, np.mean(dropout) - np.mean(none_own)) and primary.verdict == "supported"
    assert math.isclose(row.effect, np.mean(dropout) - np.mean(none_at_dropouts)) and (row.n_a, row.n_b) == (5, 5)
    assert (row.verdict, row.refuted_as) == ("refuted", "negligible")
    assert result.verdict == "supported"  # the row is beside the primary, not in its place
    # The summary row says where the matched reading differs from the verdict, with its interval.
    from sparsebench.claims.page import _why
    assert f"with B at A's chosen train.lr: refuted (negligible), {row.effect:+.4g}" in _why(result)
    # Without matched runs in the plan (a regime map), no such row.
    plain = evaluate(load_catalogue()["D1"], df, tmp_path / "b", {}, "standard", planned[planned["setting"] != matched])
    assert all(c.setting != matched for c in plain.claim.checks)


def test_a_map_cell_reuses_the_runs_already_made_for_it(tmp_path, mnist_dir):
    """The map's centre is the standard experiment's own setting in its folder: the trials that tune the
    centre's arms are the standard profile's trials (the same run folders); every axis shares one centre.
    (Real MNIST: the map's data axis needs more training images than the embedded subset has.)"""
    where = [f"dataset.root={mnist_dir}", f"results_dir={tmp_path}"]
    catalogue = load_catalogue()
    standard = plan([catalogue["D4"]], "standard", where)
    mapped = plan([catalogue["D4"]], "map", where)
    assert list(mapped.axes) == ["map_mlp_regularizers"]
    axes, center = mapped.axes["map_mlp_regularizers"]
    assert center == {"model.hidden": [256, 256], "dataset.train_subset": None}
    # One factor at a time: 1 centre + 2 widths + 3 data sizes (conf/map_axes/default.yaml), each with 3 arms x 5 seeds.
    jobs = mapped.jobs["map_mlp_regularizers"]
    assert len(jobs) == (1 + 2 + 3) * 3 * 5 and len({job.run_id for job in jobs}) == len(jobs)
    ours = {job.run_dir.path for job in tuning.trials_of(standard.tunings["mlp_regularizers"], 0, deriver())}
    work = mapped.tunings["map_mlp_regularizers"]
    centre = replace(work, arms=[arm for arm in work.arms if not set(arm.arm) & set(axes)])
    assert [arm.label for arm in centre.arms] == ["regularizer=none", "regularizer=l2", "regularizer=dropout"]
    theirs = {job.run_dir.path for job in tuning.trials_of(centre, 0, deriver())}
    # The centre's none, l2 and dropout arms (9 points each) are the standard profile's very trials.
    assert len(ours & theirs) == 27


@pytest.mark.system  # plans the map profile twice: about half a minute
def test_the_wide_map_adds_its_cells_and_reuses_the_records_made_before_the_grid_was_split(tmp_path, mnist_dir):
    """map_axes=wide adds width 1024 and 80 epochs to the default grid; its runs are the very runs the committed
    wide map made (docs/claims-map/records, written before conf/map_axes existed): which grid a plan reads is
    no part of a run's identity."""
    where = [f"dataset.root={mnist_dir}", f"results_dir={tmp_path}"]
    catalogue = load_catalogue()
    default = plan([catalogue["D4"]], "map", where)
    wide = plan([catalogue["D4"]], "map", [*where, "map_axes=wide"])
    axes, center = wide.axes["map_mlp_regularizers"]
    assert axes == {"model.hidden": [[128, 128], [512, 512], [1024, 1024]],
                    "dataset.train_subset": [6000, 12500, 25000], "train.epochs": [80]}
    assert center == {"model.hidden": [256, 256], "dataset.train_subset": None, "train.epochs": 20}
    jobs = {job.run_id for job in wide.jobs["map_mlp_regularizers"]}
    assert len(jobs) == (1 + 3 + 3 + 1) * 3 * 5
    assert {job.run_id for job in default.jobs["map_mlp_regularizers"]} < jobs  # the default's cells are the wide's
    # Every first-rung trial of the cells only the wide grid has was made by the committed map, run id for run id.
    work = wide.tunings["map_mlp_regularizers"]
    only_wide = replace(work, arms=[arm for arm in work.arms
                                    if arm.arm.get("model.hidden") == "[1024,1024]" or arm.arm.get("train.epochs") == "80"])
    assert len(only_wide.arms) == 2 * 3
    trials = {job.run_dir.path.name for job in tuning.trials_of(only_wide, 0, deriver())}
    committed = Path(__file__).resolve().parents[1] / "docs" / "claims-map" / "records" / "mlp_regularizers-tuning"
    assert len(trials) == 2 * 27 and trials <= {folder.name for folder in committed.iterdir()}


def test_a_run_with_settings_changed_is_the_run_hydra_composes_for_them(tmp_path):
    """Trials and tuned runs are their arm's planned run with settings changed (configure.with_settings),
    not composed again: the result must be the config, and so the run, that Hydra composes for the command
    line with those overrides added."""
    from sparsebench.configure import validate, with_settings
    from sparsebench.identity import result_relevant
    from tests.conftest import compose_config

    line = ["experiment=mlp_regularizers", "profile=smoke", "regularizer=dropout", f"results_dir={tmp_path}"]
    settings = {"seed": 1000, "train.lr": 0.1, "regularizer.p": 0.25, "train.epochs": 5, "prune.fractions": [],
                "eval.noise": [], "eval.early_stop": False, "name": "mlp_regularizers-tuning"}
    derived = with_settings(validate(compose_config(line)), settings)
    composed = validate(compose_config([*line, "seed=1000", "train.lr=0.1", "regularizer.p=0.25", "train.epochs=5",
                                        "prune.fractions=[]", "eval.noise=[]", "eval.early_stop=false",
                                        "name=mlp_regularizers-tuning"]))
    assert derived == composed
    assert result_relevant(derived) == result_relevant(composed)
    with pytest.raises(ConfigError) as error:
        with_settings(composed, {"train.learning_rate": 0.1})
    assert str(error.value).startswith("train.learning_rate=0.1 is not allowed")
    with pytest.raises(ConfigError) as error:  # checked again as composed configs are: p must lie in [0, 1)
        with_settings(composed, {"regularizer.p": 1.5})
    assert str(error.value).startswith("regularizer.p=1.5 is not allowed")
    with pytest.raises(ConfigError) as error:
        with_settings(composed, {"regularizer.p": 1})  # (converted by OmegaConf first)
    assert str(error.value).startswith("regularizer.p=1.0 is not allowed")
    # Text that OmegaConf reads as an interpolation goes through OmegaConf (resolved within its group), not
    # kept as the text it is.
    assert with_settings(composed, {"dataset.folder": "${name}"}).dataset.folder == composed.dataset.name


def test_the_groups_kept_for_settings_changed_are_bounded_and_still_right(tmp_path, monkeypatch):
    import sparsebench.configure as configure
    from tests.conftest import compose_config

    monkeypatch.setattr(configure, "_GROUPS_CHANGED", {})
    monkeypatch.setattr(configure, "_KEPT", 2)
    base = configure.validate(compose_config(["experiment=mlp_regularizers", "profile=smoke", "regularizer=dropout",
                                              f"results_dir={tmp_path}"]))
    # Whole numbers for a float setting: OmegaConf converts them (a value of the field's own type skips it).
    for lr in (1, 2, 3, 1):
        changed = configure.with_settings(base, {"train.lr": lr}).train.lr
        assert changed == lr and type(changed) is float
        assert 1 <= len(configure._GROUPS_CHANGED) <= 2


def test_a_setting_that_an_interpolation_reads_is_composed_by_hydra_and_refused(results, monkeypatch):
    """A trial changes train.lr on the arm's checked config; were train.momentum written as ${train.lr}, Hydra
    would give the trial another momentum: the plan composes that trial with Hydra and stops with one line.
    Where nothing reads a tuned setting, Hydra is not asked at all (a plan derives ~100 trials)."""
    import sparsebench.claims.plan as planning

    the_plan = plan([load_catalogue()["D4"]], "standard", [*SMALL, "train.momentum=${train.lr}",
                                                           f"results_dir={results}"])
    with pytest.raises(SparsebenchError, match="an interpolation in its config files reads one of them"):
        tune(the_plan, planted(lambda job: ({"validation": {"accuracy": 1.0}},)))

    def composed(command, stamp):
        raise AssertionError(f"composed: {command}")

    monkeypatch.setattr(planning, "_composed_once", composed)
    tune(d4_plan(results), planted(lambda job: ({"validation": {"accuracy": 1.0}},)))


def test_a_config_folder_added_by_searchpath_is_read_for_interpolations(tmp_path):
    """Outside a Hydra context (a plan deriving its trials) the search path is sparsebench's own plus the
    folders a ``hydra.searchpath=`` of the command adds: a user's experiment there that reads train.lr
    makes train.lr a setting Hydra must compose."""
    from sparsebench.sweep import named_in_config_interpolations

    mine = tmp_path / "my_conf" / "experiment"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text("# @package _global_\ntrain:\n  momentum: ${train.lr}\n")
    assert named_in_config_interpolations(["train.lr", "seed"], []) == set()
    given = f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]"
    assert named_in_config_interpolations(["train.lr", "seed"], [given, "experiment=mine"]) == {"train.lr"}


def test_the_tuning_section_marks_a_choice_at_the_grids_edge_and_only_there(results, tmp_path):
    from sparsebench.claims.page import _tuning_section

    the_plan = d4_plan(results)
    tune(the_plan, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    section = _tuning_section(the_plan.tunings["mlp_regularizers"], tmp_path)
    chosen = dict(zip(section.table["arm"], section.table["chosen"]))
    # By hand: the largest rate wins. none's 0.3 is the top of its nine rates; dropout's 0.2 the top of its
    # three, its p (tied: the grid's first, 0.05) the bottom of three; L1's 0.2 the top of its three, its
    # strength (tied: the grid's first, 1e-5) the bottom of three.
    assert chosen["regularizer=none"] == "train.lr 0.3 (edge)"
    assert chosen["regularizer=dropout"] == "train.lr 0.2 (edge), regularizer.p 0.05 (edge)"
    assert chosen["regularizer=l1"] == "train.lr 0.2 (edge), regularizer.lam 1e-05 (edge)"
    assert section.caption.startswith("Each arm of `mlp_regularizers` tuned alike") and "wider grid" in section.caption
    assert "(one of two)" not in section.caption
    # Of two values each is an edge (an edge needs three or more values to be told from a middle): the home
    # regime's dropout arm tries max-norm 2 and 3 (conf/experiment/d4_home.yaml); tied, the grid's first, 2.
    home = d4_plan(results, profile="paper")
    tune(home, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    section = _tuning_section(home.tunings["d4_home"], tmp_path)
    chosen = dict(zip(section.table["arm"], section.table["chosen"]))
    assert chosen["regularizer=dropout_paper"] == "train.lr 0.05 (edge), regularizer.max_norm 2.0 (one of two)"
    assert "(one of two): two values of that setting were tried" in section.caption


def test_a_knob_written_as_a_one_layer_list_is_marked_at_its_grids_edge_too(results, tmp_path):
    """k-winners' k is a list, one entry a layer ([0.1], [0.15], [0.2]): its top value is an edge like any
    number's, and its middle is not."""
    from sparsebench.claims.page import _tuning_section

    def chosen(score):
        the_plan = plan([load_catalogue()["K2"]], "standard", [*SMALL, f"results_dir={results}"])
        tune(the_plan, planted(lambda job: ({"validation": {"accuracy": score(job.config) if hasattr(
            job.config.regularizer, "percent_on") else 0.0}},)))
        return _tuning_section(the_plan.tunings["mlp_kwinners"], tmp_path).table["chosen"].iloc[0]

    # By hand: mlp_kwinners tries lr [0.1, 0.2, 0.4] x k [0.1, 0.15, 0.2].
    assert chosen(lambda c: c.regularizer.percent_on[0] - abs(c.train.lr - 0.2)) == \
        "train.lr 0.2, regularizer.percent_on [0.2] (edge)"
    assert chosen(lambda c: -abs(c.regularizer.percent_on[0] - 0.15) - abs(c.train.lr - 0.2)) == \
        "train.lr 0.2, regularizer.percent_on [0.15]"


def test_a_one_arm_experiment_is_captioned_as_one_arm_and_no_edge_is_explained_where_none_was_chosen(results, tmp_path):
    from sparsebench.claims.page import _tuning_section

    the_plan = plan([load_catalogue()["K3"]], "paper", [*SMALL, f"results_dir={results}"])
    # The middle of each grid wins: 0.01 (dense CNN-2's six rates 0.0025 .. 0.08, a factor of 2 apart).
    tune(the_plan, planted(lambda job: ({"validation": {"accuracy": -abs(math.log2(job.config.train.lr / 0.01))}},)))
    section = _tuning_section(the_plan.tunings["kwinners_home_dense_cnn2"], tmp_path)
    assert section.table["chosen"].tolist() == ["train.lr 0.01"]
    assert section.caption.startswith("`kwinners_home_dense_cnn2` (one arm) tuned on the validation split: 6 points,")
    assert "wider grid" not in section.caption


def test_the_tuning_figure_marks_a_failed_trial_where_the_grid_tried_it(results, tmp_path, monkeypatch):
    from sparsebench.claims import tuning_figure

    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, out, name, *a, **k: drawn.setdefault(name, fig) and [])
    the_plan = plan([load_catalogue()["K3"]], "paper", [*SMALL, f"results_dir={results}"])
    # Dense CNN-2's largest rate (0.08) diverges; the others score their rate.
    tune(the_plan, planted(lambda job: ({}, "failed") if job.config.train.lr == 0.08
                           else ({"validation": {"accuracy": 90 + job.config.train.lr}},)))
    tuning_figure.plot_tuning(the_plan.tunings["kwinners_home_dense_cnn2"], tmp_path)
    fig = drawn["tuning_kwinners_home_dense_cnn2"]
    (ax,) = [a for a in fig.axes if a.get_visible()]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["failed (no score)"].get_xdata()) == [0.08]
    assert list(lines["chosen"].get_xdata()) == [0.04]  # the best rate that did not fail
    assert "its one arm tuned" in fig.get_suptitle() and ax.get_title() == ""


def test_the_tuning_caption_names_the_schedule_each_experiment_runs(results, tmp_path):
    """Two rungs are successive halving, at a quarter of the experiment's epochs and then all of them; one rung
    (the continual arms, whose tasks' epochs cannot be cut) is every point at the whole budget, no halving."""
    from sparsebench.claims.page import _tuning_section

    the_plan = d4_plan(results)
    tune(the_plan, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    epochs = the_plan.tunings["mlp_regularizers"].arms[0].jobs[0].config.train.epochs
    caption = _tuning_section(the_plan.tunings["mlp_regularizers"], tmp_path).caption
    # By hand: conf/tune/halving.yaml's rungs [0.25, 1.0] of the experiment's epochs, eta 3.
    assert f"successive halving over {max(1, round(epochs / 4))} → {epochs} epochs (the best 1/3" in caption
    assert "at the last rung" in caption and "whole budget" not in caption

    continual = plan([load_catalogue()["K4"]], "standard", [*SMALL, f"results_dir={results}"])
    tune(continual, planted(lambda job: ({"continual": {"validation_average_accuracy": job.config.train.lr}},)))
    name = "continual_mlp"
    caption = _tuning_section(continual.tunings[name], tmp_path).caption
    task_epochs = continual.tunings[name].arms[0].jobs[0].config.train.epochs
    unit = "epoch" if task_epochs == 1 else "epochs"
    assert f"every point at the final runs' whole budget ({task_epochs} {unit} a task)" in caption
    assert "halving" not in caption and "at the last rung" not in caption


def test_the_tuning_table_names_each_arms_runner_up_and_how_far_behind_it_is(results, tmp_path):
    """Validation accuracy planted as the learning rate: the dense arm's nine rates [0.0125 ... 0.3] keep
    their top three, 0.15, 0.2 and 0.3, for the last rung, so it chooses 0.3 with 0.2 next, 0.1 behind."""
    from sparsebench.claims.page import _tuning_section

    the_plan = d4_plan(results)
    tune(the_plan, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    tuning = the_plan.tunings["mlp_regularizers"]
    dense = table(tuning)[0]
    assert dense["arm"] == "regularizer=none"
    assert dense["chosen"] == {"train.lr": 0.3} and dense["runner_up"] == {"point": {"train.lr": 0.2}, "score": 0.2}
    rows = _tuning_section(tuning, tmp_path).table
    assert rows.iloc[0]["runner-up (score, behind by)"] == "train.lr 0.2: 0.2 (0.1)"
    # An arm with a knob names only what differs from its choice: dropout's last rung is its grid's three
    # points at lr 0.2 (p 0.05, 0.1, 0.25 tie on the planted score; the grid's order breaks the tie).
    dropout = table(tuning)[3]
    assert dropout["chosen"]["train.lr"] == 0.2 and dropout["runner_up"]["score"] == 0.2
    assert rows.iloc[3]["runner-up (score, behind by)"].startswith("regularizer.p ")
    assert rows.iloc[3]["runner-up (score, behind by)"].endswith(": 0.2 (0)")


@pytest.mark.parametrize("half_spread, tie", [(0.03, True), (0.02, False)])
def test_a_choice_ahead_of_its_runner_up_by_less_than_seed_noise_is_a_near_tie_and_its_claim_says_so(
        results, half_spread, tie):
    """The dense arm chooses lr 0.3 ahead of 0.2 by 0.1 (planted). Its two final runs score 0.3 ∓ h: their
    standard deviation is h√2, so the 95% range of a difference of two single-seed trials is
    1.96 √2 · h√2 = 3.92 h: 0.1176 for h = 0.03 (a near tie), 0.0784 for h = 0.02 (not one)."""
    from sparsebench.claims.evaluate import ClaimResult
    from sparsebench.claims.page import near_tie_text

    the_plan = d4_plan(results)
    tune(the_plan, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    tuning = the_plan.tunings["mlp_regularizers"]
    dense = tuning.arms[0]
    assert dense.label == "regularizer=none" and dense.chosen == {"train.lr": 0.3}
    for job, score in zip(dense.finals[:2], (0.3 - half_spread, 0.3 + half_spread)):
        job.__dict__["run_dir"] = Record({"validation": {"accuracy": score}})
    assert dense.seed_spread("validation/accuracy") == pytest.approx(half_spread * math.sqrt(2))
    assert dense.near_tie(tuning.spec) is tie
    assert table(tuning)[0]["near_tie"] is tie
    # The other arms' final runs have no record: no spread, so no judgement either way.
    assert [arm.near_tie(tuning.spec) for arm in tuning.arms[1:]] == [None, None, None]
    d4 = ClaimResult(load_catalogue()["D4"], "supported", experiments=["mlp_regularizers"])
    text = near_tie_text(d4, [tuning])
    assert text == ("tuned choice a near tie: regularizer=none led train.lr 0.2 by 0.1" if tie else "")
    # Where each side of the claim is an experiment of one arm, the experiment names the side.
    alone = replace(tuning, experiment="dense_alone", arms=[dense])
    d4_alone = ClaimResult(load_catalogue()["D4"], "supported", experiments=["dense_alone"])
    assert near_tie_text(d4_alone, [alone]) == ("tuned choice a near tie: dense_alone led train.lr 0.2 by 0.1"
                                                if tie else "")


def test_a_claims_near_tie_note_names_the_arms_its_primary_check_reads_by_grid_and_by_experiment(results):
    """Each tuned arm's final runs planted around its choice so that every choice is a near tie (seeds 10 either
    side of it, against gaps between trials of at most 0.1: the planted validation score is the learning
    rate). K3's primary reads dropout at each rate of its grid (dropout_rates' arms p 0.2 ... 0.6,
    not p 0.8 and not mlp_regularizers' dropout arm) against the dense net; K4's reads the sparse net against
    the dense net that its selector names by experiment (continual_mlp's none, not the narrow dense net)."""
    from sparsebench.claims.evaluate import ClaimResult
    from sparsebench.claims.page import near_tie_text

    catalogue = load_catalogue()
    for claim_id, metric in (("K3", "validation"), ("K4", "continual")):
        the_plan = plan([catalogue[claim_id]], "standard", [*SMALL, f"results_dir={results}"])
        key = "accuracy" if metric == "validation" else "validation_average_accuracy"
        tune(the_plan, planted(lambda job: ({metric: {key: job.config.train.lr}},)))
        for tuning_ in the_plan.tunings.values():
            for arm in tuning_.arms:
                for index, job in enumerate(arm.finals):
                    job.__dict__["run_dir"] = Record({metric: {key: arm.best().score + (-10, 10)[index % 2]}})
        assert all(arm.near_tie(t.spec) for t in the_plan.tunings.values() for arm in t.arms)
        result = ClaimResult(catalogue[claim_id], "supported", experiments=list(the_plan.tunings))
        named = near_tie_text(result, list(the_plan.tunings.values())).removeprefix("tuned choice a near tie: ")
        arms = sorted(part.split(" led ")[0] for part in named.split("; "))
        if claim_id == "K3":
            assert arms == ["regularizer.p=0.2", "regularizer.p=0.4", "regularizer.p=0.6", "regularizer=none"]
        else:
            assert arms == ["regularizer.weight_density=0.5", "regularizer=none"]


def plant(job, accuracy: float) -> None:
    """A final run's completed record with this validation accuracy, in the run's own folder (its run id)."""
    path = job.run_dir.path
    job.__dict__["run_dir"] = Record({"validation": {"accuracy": accuracy}})
    job.run_dir.path = path


def test_near_tied_arms_are_run_again_at_their_runner_ups_once_the_final_runs_are_done(results):
    """tune.confirm_near_ties: the dense arm chooses lr 0.3 ahead of 0.2 by 0.1 (planted); its final runs at
    0.3 ∓ 0.05 in turn (sd over 5 to 9 seeds at least 0.05) make that a near tie (1.96 √2 x 0.05 = 0.139 > 0.1); the other arms' final runs agree
    exactly (no spread, no near tie). Its seeds run again at 0.2; the other arms' final runs are read there as
    they are. Nothing is planned before the final runs are done, and nothing twice."""
    from sparsebench.claims.evaluate import with_runner_up_row
    from sparsebench.claims.plan import near_tie_runs

    the_plan = plan([load_catalogue()["D4"]], "standard",
                    [*SMALL, f"results_dir={results}", "tune.confirm_near_ties=true"])
    tune(the_plan, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    work = the_plan.tunings["mlp_regularizers"]
    assert work.spec.confirm_near_ties and near_tie_runs(the_plan) == 0  # no final run has a record yet
    dense, others = work.arms[0], work.arms[1:]
    for number, job in enumerate(dense.finals):
        plant(job, 0.3 + (0.05 if number % 2 else -0.05))
    for arm in others:
        for job in arm.finals:
            plant(job, 0.3)
    assert dense.near_tie(work.spec) and not any(arm.near_tie(work.spec) for arm in others)
    before = len(the_plan.all_jobs())
    added = near_tie_runs(the_plan)
    moved = [job for job in the_plan.jobs["mlp_regularizers"] if job.settings == (tuning.RUNNER_UP,)]
    assert added == len(dense.finals) == len(moved) and len(the_plan.all_jobs()) == before + added
    assert sorted(job.config.seed for job in moved) == sorted(job.config.seed for job in dense.finals)
    assert {job.config.train.lr for job in moved} == {0.2}
    assert all(job.config.regularizer.name == "none" for job in moved)
    assert all(tuning.RUNNER_UP in job.settings for arm in others for job in arm.finals)
    assert near_tie_runs(the_plan) == 0  # planned once
    # The claim reads its primary check there too: dropout against the dense net at its runner-up.
    claim = with_runner_up_row(load_catalogue()["D4"], the_plan.planned_runs())
    assert [check.setting for check in claim.checks].count(tuning.RUNNER_UP) == 1
    # Without confirm_near_ties, the same near tie plans nothing.
    plain = plan([load_catalogue()["D4"]], "standard", [*SMALL, f"results_dir={results}"])
    tune(plain, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    for number, job in enumerate(plain.tunings["mlp_regularizers"].arms[0].finals):
        plant(job, 0.3 + (0.05 if number % 2 else -0.05))
    assert near_tie_runs(plain) == 0


def test_an_experiment_without_a_near_tie_has_its_final_runs_read_at_the_runner_ups_of_another(results):
    """K1 compares the k-winners net (mlp_kwinners, one arm, its final runs in exact agreement: no near tie)
    with dropout (mlp_regularizers, near-tied): the runner-up reading needs the k-winners net's final runs
    too, as they are, with no run added for them."""
    from sparsebench.claims.evaluate import with_runner_up_row
    from sparsebench.claims.plan import near_tie_runs

    the_plan = plan([load_catalogue()["K1"]], "standard",
                    [*SMALL, f"results_dir={results}", "tune.confirm_near_ties=true"])
    tune(the_plan, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    kwinners = the_plan.tunings["mlp_kwinners"].arms[0]
    for work in the_plan.tunings.values():
        for arm in work.arms:
            for number, job in enumerate(arm.finals):
                plant(job, 0.3 + (0.05 if number % 2 else -0.05) * (arm is not kwinners))
    assert not kwinners.near_tie(the_plan.tunings["mlp_kwinners"].spec)
    assert the_plan.tunings["mlp_regularizers"].arms[3].near_tie(the_plan.tunings["mlp_regularizers"].spec)
    kwinners_runs = len(the_plan.jobs["mlp_kwinners"])
    near_tie_runs(the_plan)
    assert len(the_plan.jobs["mlp_kwinners"]) == kwinners_runs  # nothing run again for an arm without a tie
    assert all(tuning.RUNNER_UP in job.settings for job in kwinners.finals)
    claim = with_runner_up_row(load_catalogue()["K1"], the_plan.planned_runs())
    assert [check.setting for check in claim.checks].count(tuning.RUNNER_UP) == 1


def test_the_runner_up_row_reads_the_near_tied_arm_at_its_runner_up_beside_the_primary(tmp_path):
    """Constructed: dropout (not tied) beats the dense net's chosen lr by 0.3 points, but the dense net at its
    runner-up lr scores as dropout does: the primary is supported, the runner-up row negligible, each from
    its own runs."""
    ru = tuning.RUNNER_UP
    dropout = [98.40, 98.42, 98.38, 98.41, 98.39]
    none_chosen, none_runner_up = [98.10, 98.12, 98.08, 98.11, 98.09], [98.402, 98.400, 98.403, 98.399, 98.401]

    def rows(name, lr, values, settings):
        return arm_rows("test/accuracy", name, lr, values, settings)
    df = pd.DataFrame(rows("dropout", 0.1, dropout, ["tuned", ru]) + rows("none", 0.05, none_chosen, ["tuned"])
                      + rows("none", 0.1, none_runner_up, [ru]))
    planned = df[["experiment", "regularizer.name", "train.lr", "seed", "setting"]].assign(
        settings=df.groupby("run_id")["setting"].transform(lambda s: [tuple(s)] * len(s)))
    result = evaluate(load_catalogue()["D4"], df, tmp_path, {}, "standard", planned)
    number = next(i for i, c in enumerate(result.claim.checks) if c.setting == ru)
    row, primary = result.checks[number], result.checks[result.claim.primary_index]
    assert "each near-tied arm at its runner-up" in result.claim.checks[number].label
    assert math.isclose(primary.effect, np.mean(dropout) - np.mean(none_chosen)) and primary.verdict == "supported"
    assert math.isclose(row.effect, np.mean(dropout) - np.mean(none_runner_up)) and (row.n_a, row.n_b) == (5, 5)
    assert (row.verdict, row.refuted_as) == ("refuted", "negligible")
    assert result.verdict == "supported"  # beside the primary, not in its place
    from sparsebench.claims.page import _why
    assert (f"with the near-tied arms at their runner-ups: refuted (negligible), {row.effect:+.4g} [{row.low:+.4g}, "
            f"{row.high:+.4g}]: the verdict holds for the choice made, not for both") in _why(result)
    # Where no arm was run at a runner-up, no such row (every final run planned there too is not enough).
    plain = planned[~((planned["regularizer.name"] == "none") & (planned["setting"] == ru))]
    assert all(c.setting != ru for c in evaluate(load_catalogue()["D4"], df, tmp_path / "b", {}, "standard",
                                                  plain).claim.checks)


def _beyond(arm) -> list[tuple]:
    """An arm's trials beyond its grid: (round, point, epochs, seed), in the order they were planned."""
    return [(t.beyond, t.point, t.epochs, t.job.config.seed) for rung in arm.trials for t in rung if t.beyond]


def test_a_choice_at_an_edge_is_tried_one_step_beyond_it_and_chosen_again_two_rounds_at_most(results, tmp_path):
    """Validation accuracy planted as -|log(lr / peak)| (the dense arm) and -|log(lr / 0.1)| - p (dropout): each
    grid's choice is at an edge, and the steps beyond it are the edge times its ratio to its neighbour."""
    from sparsebench.claims.page import _tuning_section

    def planted_peak(peak):
        def score(job):
            c = job.config
            if c.regularizer.name == "dropout":
                return {"validation": {"accuracy": -abs(math.log(c.train.lr / 0.1)) - c.regularizer.p}},
            return {"validation": {"accuracy": -abs(math.log(c.train.lr / peak))}},
        the_plan = plan([load_catalogue()["D4"]], "standard", [*GRID_AND_BEYOND, f"results_dir={results}"])
        tune(the_plan, planted(score))
        return the_plan, {arm.label: arm for arm in the_plan.tunings["mlp_regularizers"].arms}

    # Peak 0.4. By hand: none's nine rates [0.0125 .. 0.3]: the last rung keeps 0.15, 0.2, 0.3 and chooses 0.3,
    # its top; one step beyond is 0.3 x 0.3 / 0.2 = 0.45, nearer 0.4 (|log 1.125| = 0.118 < |log 0.75| = 0.288),
    # chosen; the next, 0.45 x 0.45 / 0.3 = 0.675, is farther (0.523): 0.45 stays, inside what was tried.
    the_plan, arms = planted_peak(0.4)
    assert _beyond(arms["regularizer=none"]) == [(1, {"train.lr": 0.45}, 20, 1000), (2, {"train.lr": 0.675}, 20, 1000)]
    assert arms["regularizer=none"].chosen == {"train.lr": 0.45}
    # Dropout: lr 0.1 (inside its grid), p 0.05 its bottom: p 0.05 x 0.05 / 0.1 = 0.025, better, then
    # 0.0125, better again; two rounds ran, so 0.0125 stays an edge.
    assert [point for _, point, _, _ in _beyond(arms["regularizer=dropout"])] == [
        {"train.lr": 0.1, "regularizer.p": 0.025}, {"train.lr": 0.1, "regularizer.p": 0.0125}]
    assert arms["regularizer=dropout"].chosen == {"train.lr": 0.1, "regularizer.p": 0.0125}
    # The final runs use the choice made beyond the grid, every seed.
    finals = [job.config for job in the_plan.jobs["mlp_regularizers"] if "tuned" in job.settings]
    assert {c.train.lr for c in finals if c.regularizer.name == "none"} == {0.45}
    assert sorted(c.seed for c in finals if c.regularizer.name == "none") == list(range(9))
    section = _tuning_section(the_plan.tunings["mlp_regularizers"], tmp_path)
    rows = section.table.set_index("arm")
    assert rows.loc["regularizer=none", "chosen"] == "train.lr 0.45 (beyond the grid)"
    assert rows.loc["regularizer=none", "trials per rung"] == "9 → 3 + 2 beyond the edges"
    assert rows.loc["regularizer=dropout", "chosen"] == "train.lr 0.1, regularizer.p 0.0125 (edge, beyond the grid)"
    assert "up to 2 rounds" in section.caption and "after 2 rounds beyond it" in section.caption

    # Peak 0.05: none's grid brackets its choice (0.05 between 0.0375 and 0.075): nothing beyond it.
    _, arms = planted_peak(0.05)
    assert arms["regularizer=none"].chosen == {"train.lr": 0.05} and _beyond(arms["regularizer=none"]) == []


def test_a_step_beyond_a_settings_range_is_not_tried_and_a_failed_one_brackets_the_edge(results, tmp_path):
    the_plan = plan([load_catalogue()["D4"]], "standard", [*GRID_AND_BEYOND, f"results_dir={results}"])

    def score(job):  # dropout: the higher p the better (lr 0.1 best); none: the rate, but beyond 0.3 it diverges
        c = job.config
        if c.regularizer.name == "dropout":
            return {"validation": {"accuracy": c.regularizer.p - abs(math.log(c.train.lr / 0.1))}}, "completed"
        if c.train.lr > 0.3:
            return None, "failed"
        return {"validation": {"accuracy": c.train.lr}}, "completed"

    tune(the_plan, planted(score))
    arms = {arm.label: arm for arm in the_plan.tunings["mlp_regularizers"].arms}
    # By hand: p's top, 0.25 beside 0.1, steps to 0.625 (chosen); the next, 0.625 x 0.625 / 0.25 = 1.5625, is no
    # drop probability, so it is not tried and the arm says why.
    dropout = arms["regularizer=dropout"]
    assert [point["regularizer.p"] for _, point, _, _ in _beyond(dropout)] == [0.625]
    assert dropout.chosen == {"train.lr": 0.1, "regularizer.p": 0.625}
    assert "regularizer.p=1.5625" in dropout.blocked["regularizer.p"] and "[0, 1)" in dropout.blocked["regularizer.p"]
    assert dropout.edge("regularizer.p") == "edge, beyond the grid"
    from sparsebench.claims.page import _tuning_section
    caption = _tuning_section(the_plan.tunings["mlp_regularizers"], tmp_path).caption
    assert "No step tried: regularizer=dropout: regularizer.p=1.5625 is not allowed" in caption
    # none: 0.45 diverges; 0.3 stays chosen and is no longer an edge (a worse trial lies beyond it either side).
    none = arms["regularizer=none"]
    assert [point for _, point, _, _ in _beyond(none)] == [{"train.lr": 0.45}]
    assert none.chosen == {"train.lr": 0.3} and none.edge("train.lr") == ""


def test_a_report_made_before_the_trials_beyond_an_edge_ran_makes_no_choice_for_that_arm(results):
    """run=false after the grid's trials but before those beyond the edge: the arm at an edge has no choice
    (its grid's best is not final) and the tuning says it is not finished; an arm inside its grid has its choice."""
    the_plan = plan([load_catalogue()["D4"]], "standard", [*GRID_AND_BEYOND, f"results_dir={results}"])
    grid_only = planted(lambda job: ({"validation": {"accuracy": -abs(math.log(job.config.train.lr / 0.1))}},))

    stages = []

    def execute(stage):  # the grid's two rungs have records; the first round beyond the edges has none yet
        stages.append(stage)
        return grid_only(stage) if len(stages) <= 2 else {}

    tune(the_plan, execute)
    arms = {arm.label: arm for arm in the_plan.tunings["mlp_regularizers"].arms}
    # By hand: every arm's lr 0.1 is inside its grid; dropout's p, L1's and L2's strengths tie, so each takes
    # the grid's first, its bottom edge, and waits for the trial beyond it.
    assert arms["regularizer=none"].chosen == {"train.lr": 0.1}
    assert [arms[f"regularizer={name}"].chosen for name in ("dropout", "l1", "l2")] == [None] * 3
    assert len(stages) == 3 and {job.config.train.epochs for job in stages[2].all_jobs()} == {20}
    assert "not finished" in the_plan.tuning_unfinished()["mlp_regularizers"]
    assert not any(job.config.regularizer.name == "dropout" and "tuned" in job.settings
                   for job in the_plan.jobs["mlp_regularizers"])


def _arm(space: dict[str, list], chosen: dict) -> tuning.ArmTuning:
    """An arm whose grid is ``space``, its last rung holding only the chosen point (scored)."""
    arm = tuning.ArmTuning({}, tuning.grid(space, None), jobs=[])
    arm.trials = [[tuning.Trial(dict(chosen), 0, 1, job=None, score=1.0)]]
    arm.chosen = dict(chosen)
    return arm


def test_the_step_beyond_an_edge_is_the_edges_ratio_to_its_neighbour_and_never_leaves_the_positive_numbers():
    class Fake:
        def __init__(self, settings):
            self.settings = settings

    spec = TuneConfig(arms=[TuneArm({}, {"x": [0.0]})], rungs=[1.0], extend_edges=1)

    def beyond(space, chosen):
        arm = _arm(space, chosen)
        arm.jobs = [Fake({})]
        work = tuning.Tuning("e", spec, [arm], "e-tuning")
        work.rung_epochs = lambda _: [1]
        jobs = tuning.beyond_edges(work, lambda job, settings, shown=None: Fake(settings))
        return [{k: v for k, v in job.settings.items() if k in space} for job in jobs], arm.blocked

    # By hand: 0.1 beside 0.2 steps to 0.05; 0.4 beside 0.2 to 0.8; a middle value has no step.
    assert beyond({"lr": [0.1, 0.2, 0.4]}, {"lr": 0.1}) == ([{"lr": 0.05}], {})
    assert beyond({"lr": [0.1, 0.2, 0.4]}, {"lr": 0.4}) == ([{"lr": 0.8}], {})
    assert beyond({"lr": [0.1, 0.2, 0.4]}, {"lr": 0.2}) == ([], {})
    # A one-element list (k-winners' k) steps inside its list: 0.2 beside 0.15 to 0.2667 (0.2 x 0.2 / 0.15).
    assert beyond({"k": [[0.1], [0.15], [0.2]]}, {"k": [0.2]}) == ([{"k": [0.266667]}], {})
    # A grid of whole numbers steps to a whole number: 10 beside 5 to 20; 1 beside 3 would be 0.33, rounded to
    # 0: no positive value, so not tried, and the arm says why.
    assert beyond({"n": [1, 5, 10]}, {"n": 10}) == ([{"n": 20}], {})
    points, blocked = beyond({"n": [1, 3, 10]}, {"n": 1})
    assert points == [] and "rounds to 0" in blocked["n"]
    # A grid holding 0 has no ratio to step by.
    points, blocked = beyond({"lam": [0.0, 1e-4, 1e-3]}, {"lam": 0.0})
    assert points == [] and "not all positive" in blocked["lam"]


def test_an_edge_is_read_among_the_numbers_tried_where_a_setting_also_takes_a_value_that_is_no_number():
    """max-norm off (null) beside two numbers: the numbers' edges are edges; null is no edge of anything."""
    assert _arm({"max_norm": [None, 2.0, 3.0, 4.0]}, {"max_norm": 4.0}).edge("max_norm") == "edge"
    assert _arm({"max_norm": [None, 2.0, 3.0, 4.0]}, {"max_norm": 3.0}).edge("max_norm") == ""
    assert _arm({"max_norm": [None, 2.0, 3.0, 4.0]}, {"max_norm": None}).edge("max_norm") == ""


def test_a_paper_table_counts_each_run_once_when_near_ties_are_read_at_the_runner_ups(results, tmp_path):
    """P-DO's three tuned experiments, none a near tie (every final run planted alike): with
    tune.confirm_near_ties their final runs are also planned under the runner-up setting, and the table still
    counts 3 networks x 5 seeds = 15 runs, none short."""
    from sparsebench.claims.evaluate import table_shortfall, under
    from sparsebench.claims.plan import near_tie_runs

    claim = load_catalogue()["P-DO"]
    the_plan = plan([claim], "paper", [*SMALL, f"results_dir={results}", "tune.confirm_near_ties=true"])
    tune(the_plan, planted(lambda job: ({"validation": {"accuracy": job.config.train.lr}},)))
    for work in the_plan.tunings.values():
        for arm in work.arms:
            for job in arm.finals:
                plant(job, 0.3)
    near_tie_runs(the_plan)
    planned = the_plan.planned_runs()
    assert len(planned) == 30  # each final run under two settings: the tuned one and the runner-ups'
    # The table reads the tuned runs: here every planned run has its record.
    rows = under(planned, tuning.TUNED)
    assert table_shortfall(claim.table, rows, planned) == (15, {})
    # One network's seed 4 without a record is short there, and only there.
    missing = rows[~((rows["seed"] == 4) & (rows["experiment"] == claim.experiments_for("paper")[0]))]
    count, short = table_shortfall(claim.table, missing, planned)
    assert count == 15 and [seeds for seeds in short.values()] == [[4]]


def test_an_arm_still_tuning_shows_how_many_of_its_trials_are_recorded_and_chooses_nothing(results, tmp_path,
                                                                                            monkeypatch):
    """A long tuning resumed across sittings (K4's home regime): the page says how far each arm got, and an
    arm with some of its first rung's trials recorded chooses nothing from them."""
    from sparsebench.claims.page import _tuning_section

    the_plan = d4_plan(results)

    def some(stage):  # the dense net's three smallest rates recorded, nothing else
        for job in stage.all_jobs():
            if job.config.regularizer.name == "none" and job.config.train.lr <= 0.0375:
                job.__dict__["run_dir"] = Record({"validation": {"accuracy": job.config.train.lr}})
        return {"completed": 3}

    tune(the_plan, some)
    section = _tuning_section(the_plan.tunings["mlp_regularizers"], tmp_path)
    chosen = dict(zip(section.table["arm"], section.table["chosen"]))
    # By hand: none's grid [0.0125, 0.025, 0.0375, 0.05, ...] has 3 rates up to 0.0375 of the first rung's 9.
    assert chosen["regularizer=none"] == "not yet (3 of 9 trials recorded)"
    assert chosen["regularizer=l1"] == "not yet (0 of 9 trials recorded)"
    assert all(arm.chosen is None for arm in the_plan.tunings["mlp_regularizers"].arms)
    # Its figure keeps a panel for every arm: the dense net's three points, the others' panels saying so.
    from sparsebench.claims import tuning_figure

    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, out, name, *a, **k: drawn.setdefault(name, fig) and [])
    tuning_figure.plot_tuning(the_plan.tunings["mlp_regularizers"], tmp_path)
    panels = [ax for ax in drawn["tuning_mlp_regularizers"].axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["no regularizer", "L1", "L2", "dropout"]
    assert sorted(panels[0].get_lines()[0].get_xdata()) == [0.0125, 0.025, 0.0375]
    assert [[t.get_text() for t in ax.texts] for ax in panels[1:]] == [["no trial recorded yet"]] * 3


def test_an_arm_whose_every_trial_failed_says_so_rather_than_not_yet(results, tmp_path):
    from sparsebench.claims.page import _tuning_section

    the_plan = d4_plan(results)
    tune(the_plan, planted(lambda job: (None, "failed") if job.config.regularizer.name == "none"
                           else ({"validation": {"accuracy": job.config.train.lr}}, "completed")))
    section = _tuning_section(the_plan.tunings["mlp_regularizers"], tmp_path)
    chosen = dict(zip(section.table["arm"], section.table["chosen"]))
    assert chosen["regularizer=none"] == "none: every trial failed"
    assert chosen["regularizer=l1"] == "train.lr 0.2 (edge), regularizer.lam 1e-05 (edge)"
