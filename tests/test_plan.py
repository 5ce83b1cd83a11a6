"""A claims plan composes each experiment once and derives its jobs from that: its jobs must be the
jobs that composing each one alone with Hydra's Compose API gives (conftest.compose_config), for
sweeps of seeds, of a regularizer's setting and of the regularizer itself, under every profile and with
settings of the command line besides."""

from __future__ import annotations

import itertools

import pytest

from sparsebench.claims.catalogue import load_catalogue
from sparsebench.claims.plan import plan
from sparsebench.configure import validate
from sparsebench.errors import ConfigError
from sparsebench.runner import run_dir_for
from sparsebench.sweep import (
    compose_jobs,
    compose_multirun,
    hydra_configs,
    validate_multirun,
)
from tests.conftest import compose_config

# What these reports count and say is tested here; their figures are tested in tests/report.
pytestmark = pytest.mark.usefixtures("figures_not_rendered")

SMOKE_SEEDS = ["seed=0", "seed=1"]  # conf/profile/smoke.yaml
FIVE_SEEDS = [f"seed={s}" for s in range(5)]  # the experiments' own range(5)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test composes its plans afresh (the kept ones go to a cache of its own)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "sparsebench" / "plans"


def sweep(*axes: list[str]) -> list[list[str]]:
    return [list(values) for values in itertools.product(*axes)]


# (claims, profile, command-line overrides, experiment -> every job's sweep values as the experiment and
# profile files declare them, written out by hand). The embedded subset's 5,000 training images cannot give
# the experiments' 10,000 validation images: a smaller split is set.
CASES = [
    (["D1"], "smoke", ["train.epochs=2", "dataset.val_size=100"], {
        "mlp_regularizers": sweep(["regularizer=none", "regularizer=l1", "regularizer=l2", "regularizer=dropout"],
                                  SMOKE_SEEDS),
        # D1's usual rates (its side check): the rate sweep of conf/experiment/dropout_rates.yaml
        "dropout_rates": sweep(["regularizer.p=0.2", "regularizer.p=0.4", "regularizer.p=0.6", "regularizer.p=0.8"],
                               SMOKE_SEEDS),
    }),
    (["G1"], "standard", ["dataset=embedded", "dataset.val_size=500", "model.hidden=[64]"], {
        "spatial_dropout": sweep(["regularizer.spatial=False", "regularizer.spatial=True"], FIVE_SEEDS),
    }),
    (["P-DC"], "paper", ["dataset=embedded", "dataset.val_size=500", "model.hidden=[32,16]"], {
        "dropconnect_paper_mlp": sweep(["regularizer=none", "regularizer=dropout", "regularizer=dropconnect_paper"],
                                       FIVE_SEEDS),
    }),
]


@pytest.mark.parametrize("claims,profile,overrides,expected", CASES, ids=[c[1] for c in CASES])
def test_a_plan_holds_the_jobs_that_composing_each_alone_gives(claims, profile, overrides, expected, tmp_path):
    overrides = [*overrides, f"results_dir={tmp_path}"]
    catalogue = load_catalogue()
    the_plan = plan([catalogue[c] for c in claims], profile, overrides)
    assert list(the_plan.jobs) == list(expected)
    for experiment, sweeps in expected.items():
        jobs = the_plan.jobs[experiment]
        assert sorted(sorted(job.overrides) for job in jobs) == sorted(sorted(values) for values in sweeps)
        # Composing a job alone takes a while: every sweep value is checked, on the first and last seed.
        for job in [job for job in jobs if job.config.seed in (0, max(j.config.seed for j in jobs))]:
            reference = validate(compose_config([f"experiment={experiment}", f"profile={profile}", *overrides,
                                                 *job.overrides]))
            assert job.config == reference, " ".join(job.overrides)
            if reference.dataset.name == "embedded":  # its data are at hand: the run ids themselves
                assert job.run_id == run_dir_for(reference).path.name


def test_settings_where_one_lies_inside_the_other_compose_as_alone():
    """``train={...}`` swept and ``train.lr=...`` on one command line: the order they apply in matters
    (Hydra applies them in the command's order: the learning rate last), so those jobs are composed one
    by one, as Hydra does."""
    command = ["experiment=mlp_regularizers", "profile=smoke", "train={epochs:3,lr:0.5},{epochs:4,lr:0.5}",
               "train.lr=0.2", "regularizer=none", "seed=4"]
    with hydra_configs():
        jobs = [(job, validate(cfg)) for job, cfg in compose_multirun(command)]
    assert [job for job, _ in jobs] == [
        ["regularizer=none", "seed=4", "experiment=mlp_regularizers", "profile=smoke",
         f"train={{epochs:{epochs},lr:0.5}}", "train.lr=0.2"] for epochs in (3, 4)]
    for (job, config), epochs in zip(jobs, (3, 4)):
        assert config == validate(compose_config(job))
        assert config.train.lr == 0.2 and config.train.epochs == epochs and config.seed == 4


def test_two_group_sweeps_compose_as_alone():
    """Sweeps over two config groups: each pair of choices is composed as Hydra composes it alone,
    including the pair whose one choice is the default (a group's default may depend on another's)."""
    command = ["experiment=mlp_regularizers", "profile=smoke", "regularizer=none,dropout", "model=mlp,mnist_cnn",
               "seed=0", "dataset=embedded"]
    with hydra_configs():
        jobs = [(job, validate(cfg)) for job, cfg in compose_multirun(command)]
    assert sorted((config.regularizer.name, config.model.name) for _, config in jobs) == [
        ("dropout", "mlp"), ("dropout", "mnist_cnn"), ("none", "mlp"), ("none", "mnist_cnn")]
    for job, config in jobs:
        assert config == validate(compose_config(job)), " ".join(job)


def test_an_experiment_without_its_data_is_marked_unavailable_and_the_others_stay(make_config, tmp_path):
    """The paper profile's CIFAR-10 claims where only MNIST is at hand: that experiment is reported as
    not run with why; when no experiment has its data, the command's input is wrong: DataError."""
    from sparsebench.claims.plan import Job, Plan
    from sparsebench.errors import DataError

    empty = tmp_path / "no-data"
    empty.mkdir()
    here = make_config()
    missing = make_config("dataset=mnist", f"dataset.root={empty}", "dataset.download=false",
                          "dataset.train_subset=100", "dataset.test_subset=100")
    the_plan = Plan({"here": [Job("here", [], here)], "away": [Job("away", [], missing)]})
    the_plan.mark_unavailable()
    assert list(the_plan.unavailable) == ["away"] and str(empty) in the_plan.unavailable["away"]
    assert [job.done for job in the_plan.all_jobs()] == [False, False]  # nothing run yet; no error
    alone = Plan({"away": [Job("away", [], missing)]})
    with pytest.raises(DataError, match="missing"):
        alone.mark_unavailable()


def test_jobs_that_differ_only_in_their_seed_are_the_jobs_validated_alone():
    """validate_multirun checks a group of jobs that differ only in their seed once: every job's config
    must still be the one validating it alone gives, its seed included."""
    command = ["experiment=dropout_rates", "profile=smoke", "regularizer.p=0.2,0.6", "seed=0,3,9", "dataset=embedded"]
    with hydra_configs():
        jobs = list(validate_multirun(command))
    assert sorted((config.regularizer.p, config.seed) for _, config in jobs) == [
        (p, seed) for p in (0.2, 0.6) for seed in (0, 3, 9)]
    for job, config in jobs:
        assert config == validate(compose_config(job)), " ".join(job)
    assert len({id(config.regularizer) for _, config in jobs}) == len(jobs)  # no two jobs share a part


def test_a_seed_that_an_interpolation_reads_is_validated_with_each_job():
    """A value that follows the seed (here the experiment's folder name) must differ between the jobs as
    it does when each is composed alone; so must a seed out of range fail at its own job."""
    command = ["experiment=mlp_regularizers", "profile=smoke", "regularizer=none", "seed=1,2",
               "name=run_${seed}", "dataset=embedded"]
    with hydra_configs():
        jobs = list(validate_multirun(command))
    assert [config.name for _, config in jobs] == ["run_1", "run_2"]
    for job, config in jobs:
        assert config == validate(compose_config(job))
    with hydra_configs():
        composed = validate_multirun(["experiment=mlp_regularizers", "profile=smoke", "regularizer=none",
                                      "seed=4,-1", "dataset=embedded"])
        assert next(composed)[1].seed == 4
        with pytest.raises(ConfigError, match="seed=-1"):
            next(composed)


def test_an_experiment_that_fails_in_a_fork_fails_the_plan_as_alone():
    """The experiments are composed side by side in forks of this process: an experiment that fails there
    stops the plan with the line composing it here gives, the first failing experiment named."""
    from sparsebench.cli import explain
    from sparsebench.errors import SparsebenchError
    from sparsebench.sweep import compose_jobs

    catalogue = load_catalogue()
    # The first experiment is composed here before forking, the others shared with a fork: the third is
    # the fork's. Only mlp_regularizers (its sweep includes regularizer=none) has no regularizer.p.
    claims = [catalogue["G1"], catalogue["S1"], catalogue["D1"]]
    assert [e for c in claims for e in c.experiments_for("smoke")] == ["spatial_dropout", "sparseout_q",
                                                                       "mlp_regularizers", "dropout_rates"]
    with hydra_configs(), pytest.raises(Exception) as alone:
        compose_jobs(["experiment=mlp_regularizers", "profile=smoke", "regularizer.p=0.3"], multirun=True)
    with pytest.raises(SparsebenchError) as planned:
        plan(claims, "smoke", ["regularizer.p=0.3"])
    assert str(planned.value) == f"experiment mlp_regularizers: {explain(alone.value)}"


def test_a_plan_made_before_is_read_back_and_equals_it(own_cache, monkeypatch, tmp_path):
    """The second plan of the same claims, profile and settings composes nothing: it is read back whole,
    job for job; other settings are another entry, composed."""
    import sparsebench.claims.plan as planning

    catalogue = load_catalogue()
    claims = [catalogue["G1"], catalogue["D1"]]
    overrides = ["dataset=embedded", f"results_dir={tmp_path}"]
    first = plan(claims, "smoke", overrides)
    assert len(list(own_cache.glob("*/*.pickle"))) == 3  # one entry per experiment (D1 reads two)

    def composed(task):
        raise AssertionError(f"composed again: {task[0]}")

    monkeypatch.setattr(planning, "_compose_experiment", composed)
    again = plan(claims, "smoke", overrides)
    assert {e: [(j.overrides, j.command, j.config) for j in jobs] for e, jobs in again.jobs.items()} == \
        {e: [(j.overrides, j.command, j.config) for j in jobs] for e, jobs in first.jobs.items()}
    with pytest.raises(AssertionError, match="composed again"):
        plan(claims, "smoke", [*overrides, "train.epochs=2"])
    # A damaged entry is composed again, not read.
    for kept in own_cache.glob("*/*.pickle"):
        kept.write_bytes(b"not a pickle")
    with pytest.raises(AssertionError, match="composed again"):
        plan(claims, "smoke", overrides)


def test_a_plan_made_for_one_results_folder_is_read_back_for_another_with_its_runs_there(own_cache, monkeypatch,
                                                                                          tmp_path):
    """Where the records go is no run's setting: a plan kept from another folder is read back (a first plan in
    an empty folder composes nothing), and its jobs are those Hydra composes for the new folder."""
    import sparsebench.claims.plan as planning

    claims = [load_catalogue()["D1"]]
    plan(claims, "smoke", ["dataset=embedded", f"results_dir={tmp_path / 'first'}"])
    line = ["experiment=mlp_regularizers", "profile=smoke", "dataset=embedded", f"results_dir={tmp_path / 'second'}"]
    with hydra_configs():
        expected = compose_jobs(line, multirun=True)

    def composed(task):
        raise AssertionError(f"composed again: {task[0]}")

    monkeypatch.setattr(planning, "_compose_experiment", composed)
    again = plan(claims, "smoke", ["dataset=embedded", f"results_dir={tmp_path / 'second'}"])
    assert [(job.command, job.config) for job in again.jobs["mlp_regularizers"]] == expected
    assert all(job.run_dir.path.is_relative_to(tmp_path / "second") for job in again.jobs["mlp_regularizers"])


def test_the_fingerprint_follows_the_config_files_and_the_variables_they_read(tmp_path, monkeypatch):
    """A config file changed, or a variable that a config reads with oc.env set otherwise, is another
    fingerprint: a plan kept from before is not read for it."""
    import hydra
    from hydra.core.global_hydra import GlobalHydra

    from sparsebench.claims import plancache

    configs = tmp_path / "my_conf"
    configs.mkdir()
    (configs / "config.yaml").write_text("seed: 1\n")

    def stamp() -> str:
        GlobalHydra.instance().clear()
        try:
            with hydra.initialize_config_dir(config_dir=str(configs), version_base="1.3"):
                return plancache.fingerprint()
        finally:
            GlobalHydra.instance().clear()

    monkeypatch.delenv("SPARSEBENCH_TEST_VALUE", raising=False)
    before = stamp()
    assert stamp() == before
    (configs / "config.yaml").write_text("seed: 2\n")
    changed = stamp()
    assert changed != before
    (configs / "config.yaml").write_text("seed: 2\nname: ${oc.env:SPARSEBENCH_TEST_VALUE,x}\n")
    reads = stamp()
    monkeypatch.setenv("SPARSEBENCH_TEST_VALUE", "y")
    assert len({before, changed, reads, stamp()}) == 4


def test_a_setting_that_reads_a_variable_is_composed_again_when_the_variable_changes(own_cache, monkeypatch):
    """An override may read the environment itself (results_dir='${oc.env:RUNS}'): the kept plan holds the
    value it resolved to, so another value of the variable must not read that plan back."""
    catalogue = load_catalogue()
    overrides = ["dataset=embedded", "train.epochs=${oc.env:SPARSEBENCH_TEST_EPOCHS}"]
    monkeypatch.setenv("SPARSEBENCH_TEST_EPOCHS", "1")
    first = plan([catalogue["G1"]], "smoke", overrides)
    assert {j.config.train.epochs for jobs in first.jobs.values() for j in jobs} == {1}
    monkeypatch.setenv("SPARSEBENCH_TEST_EPOCHS", "2")
    again = plan([catalogue["G1"]], "smoke", overrides)
    assert {j.config.train.epochs for jobs in again.jobs.values() for j in jobs} == {2}


def test_the_stamp_is_none_when_hydras_settings_are_given():
    from sparsebench.claims import plancache

    assert plancache.stamp(["hydra.searchpath=[file://x]"]) is None
    assert plancache.stamp(["seed=1"]) == plancache.fingerprint()


@pytest.mark.system
def test_a_report_with_nothing_to_draw_loads_no_plotting_library(tmp_path):
    """matplotlib is imported where a figure is drawn: a plan reported with run=false on an empty folder
    (no record, so no figure) does without it, in a fresh interpreter."""
    import os
    import subprocess
    import sys

    probe = ("import sys; from sparsebench.claims.cli import main; "
             f"status = main(['profile=smoke', 'run=false', 'results_dir={tmp_path / 'runs'}']); "
             "print(status, 'matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.stdout.split()[-2:] == ["0", "False"], done.stderr[-2000:]
    assert (tmp_path / "runs" / "claims-smoke" / "CLAIMS.md").is_file()
    assert not (tmp_path / "runs" / "claims-smoke" / "figures").exists()


def test_every_experiments_runs_share_one_pool_of_workers(make_config, monkeypatch, caplog):
    """A stage's runs go to one pool (a pool per experiment left a core idle at each experiment's end and
    started its workers again): every pending job of both experiments in one call, each logged with its
    number within its own experiment."""
    import logging

    from sparsebench.claims import plan as plan_module
    from sparsebench.claims.plan import Job, Plan, execute

    pools = []

    def one_pool(function, arguments, processes):
        pools.append((len(arguments), processes))
        yield from ((index, "completed") for index in reversed(range(len(arguments))))  # any order back

    monkeypatch.setattr(plan_module, "run_each", one_pool)
    first = [Job("first", [f"seed={s}"], make_config(f"seed={s}")) for s in range(2)]
    second = [Job("second", ["seed=5"], make_config("seed=5", "train.epochs=2"))]
    with caplog.at_level(logging.INFO, logger="sparsebench"):
        counts = execute(Plan({"first": first, "second": second}), jobs=2)
    assert pools == [(3, 2)] and counts == {"reused": 0, "completed": 3}
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[")]
    # Sent seed-major (first's seed 0, second's only seed, first's seed 1); the pool answers in reverse.
    assert [line.partition(" (")[0] for line in logged] == [
        "[first 1/2] seed=1: completed", "[second 1/1] seed=5: completed", "[first 2/2] seed=0: completed"]
    # Each line says how far the runs have come; the last has no time left to estimate.
    assert logged[0].endswith(" left at this pace)") and "(1 of 3 here; about " in logged[0]
    assert logged[-1].endswith("(3 of 3 here)")


def test_a_log_line_estimates_the_time_left_from_the_pace_so_far():
    """A log file has no progress bar: each run's line says how many are done and, at the pace so far, about
    how long the rest will take (time so far / runs finished x runs left)."""
    from sparsebench.claims.plan import pace

    # 600 s for 3 runs: 200 s a run, 85 left: 17,000 s = 4 h 43 min 20 s.
    assert pace(600.0, 3, 88) == "3 of 88 here; about 4h43m left at this pace"
    assert pace(30.0, 2, 3) == "2 of 3 here; about 15.0 s left at this pace"
    assert pace(5.0, 3, 3) == "3 of 3 here"


def test_runs_go_seed_major_so_a_stopped_profile_holds_every_arm_on_the_same_seeds(make_config, monkeypatch):
    """Every experiment's first seed before any experiment's second, ranked among the seeds each plans: an
    experiment already some seeds ahead waits for the others to catch up; within a seed, plan order."""
    from sparsebench.claims import plan as plan_module
    from sparsebench.claims.plan import Job, Plan, execute

    sent = []

    def one_pool(function, arguments, processes):
        sent.extend((config.seed, config.regularizer.name) for config, _, _ in arguments)
        yield from ((index, "completed") for index in range(len(arguments)))

    monkeypatch.setattr(plan_module, "run_each", one_pool)
    # "ahead" has seeds 0 and 1 done for both arms; "behind" plans seeds 10-12 (their ranks 0-2), none done.
    ahead = [Job("ahead", [f"regularizer={r}", f"seed={s}"], make_config(f"regularizer={r}", f"seed={s}"))
             for r in ("none", "dropout") for s in range(4)]
    behind = [Job("behind", [f"seed={s}"], make_config("regularizer=l1", f"seed={s}")) for s in (10, 11, 12)]
    finished = {id(job) for job in ahead if job.config.seed < 2}
    monkeypatch.setattr(Job, "done", property(lambda job: id(job) in finished))
    counts = execute(Plan({"ahead": ahead, "behind": behind}), jobs=2)
    assert counts == {"reused": 4, "completed": 7}
    # Worked by hand: ranks 0 and 1 are behind's alone; at rank 2 ahead's none, dropout, then behind's 12;
    # at rank 3 ahead's two arms.
    assert sent == [(10, "l1"), (11, "l1"), (2, "none"), (2, "dropout"), (12, "l1"), (3, "none"), (3, "dropout")]


def test_the_shared_setting_rows_runs_go_after_every_tuned_run_so_a_stopped_profile_answers_tuned_v_tuned_first(
        make_config, monkeypatch):
    """A tuned experiment plans its final runs (tuned) and its shared-setting row's runs (shared): every run the
    primary comparison reads (tuned, a run both rows read, or one of an untuned experiment) goes first, seed by
    seed, then the shared row's alone, seed by seed."""
    from sparsebench.claims import plan as plan_module
    from sparsebench.claims.plan import Job, Plan, execute
    from sparsebench.claims.tuning import SHARED, TUNED

    sent = []

    def one_pool(function, arguments, processes):
        sent.extend((config.seed, config.train.lr) for config, _, _ in arguments)
        yield from ((index, "completed") for index in range(len(arguments)))

    monkeypatch.setattr(plan_module, "run_each", one_pool)

    def job(seed: int, lr: float, *settings: str) -> Job:
        return Job("tuned", [f"seed={seed}", f"train.lr={lr}"], make_config(f"seed={seed}", f"train.lr={lr}"),
                   settings=settings)

    # The row at the shared rate 0.05 on seeds 0-1, the tuned rate 0.1 on seeds 0-2; one arm chose the shared
    # rate itself (lr 0.05 on seed 2 is a run both rows read, as the final runs' planner tags a twin).
    jobs = [job(0, 0.05, SHARED), job(1, 0.05, SHARED), job(2, 0.05, SHARED, TUNED),
            job(0, 0.1, TUNED), job(1, 0.1, TUNED), job(2, 0.1, TUNED)]
    untuned = [Job("alone", ["seed=3"], make_config("seed=3", "train.lr=0.3"))]
    execute(Plan({"tuned": jobs, "alone": untuned}), jobs=2)
    # Worked by hand: primary first by seed rank (tuned's seeds 0, 1, 2 rank 0-2; alone's 3 ranks 0), then the
    # shared row's 0 and 1.
    assert sent == [(0, 0.1), (3, 0.3), (1, 0.1), (2, 0.05), (2, 0.1), (0, 0.05), (1, 0.05)]


def test_in_this_process_a_missing_data_set_skips_the_rest_of_its_experiment_only(make_config, monkeypatch):
    from sparsebench.claims import plan as plan_module
    from sparsebench.claims.plan import Job, Plan, execute

    ran = []

    def fake_run(config, threads, overrides=None):
        ran.append(config.seed)
        return "unavailable: no files" if config.seed == 0 else "completed"

    monkeypatch.setattr(plan_module, "_run_job", fake_run)
    the_plan = Plan({"here": [Job("here", ["seed=2"], make_config("seed=2"))],
                     "away": [Job("away", [f"seed={s}"], make_config(f"seed={s}")) for s in (0, 1)],
                     "after": [Job("after", ["seed=3"], make_config("seed=3"))]})
    counts = execute(the_plan, jobs=1)
    assert ran == [2, 0, 3] and counts["completed"] == 2 and counts["unavailable"] == 1
    assert the_plan.unavailable == {"away": "no files"}
