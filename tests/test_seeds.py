"""sparsebench.seeds: every derivation returns the integer its stream has always been seeded with, and
tiny runs measure what they measured before the derivations were gathered there."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsebench import seeds
from sparsebench.runner import run

# --- each derivation, by hand from the formula each call site used -----------------------------------


def test_the_model_batch_order_split_permutations_fine_tune_and_dropout_on_seeds_are_the_seed_itself():
    # torch.manual_seed(cfg.seed), Generator().manual_seed(seed), ...(cfg.split_seed), ...(continual.seed),
    # the fine-tune subset's Generator().manual_seed(seed), torch.manual_seed(eval.noise_seed)
    for value in (0, 5, 1234, 2**31 - 1):
        assert seeds.model(value) == value
        assert seeds.data_order(value) == value
        assert seeds.split(value) == value
        assert seeds.permutations(value, run_seed=7) == value  # continual.seed set: the run's seed plays no part
        assert seeds.finetune_subset(value) == value
        assert seeds.dropout_on(value) == value


def test_hashed_streams_are_numpy_seed_sequences_of_the_run_seed_and_their_tag():
    # np.random.SeedSequence([seed, tag]).generate_state(1)[0]: permutations tag 1, random pruning tag 2
    for seed in (0, 1, 41):
        assert seeds.permutations(None, seed) == int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
        assert seeds.random_pruning(seed) == int(np.random.SeedSequence([seed, 2]).generate_state(1)[0])
    derived = {seeds.permutations(None, s) for s in range(100)} | {seeds.random_pruning(s) for s in range(100)}
    assert len(derived) == 200  # no two runs or streams share one
    older = {f(s) for s in range(100) for f in (seeds.model, seeds.augmentation)} | \
        {seeds.task(s, t) for s in range(100) for t in range(100)} | \
        {seeds.weight_mask(s, i) for s in range(100) for i in range(10)}
    assert not derived & older  # clear of the streams seeded by offsets


def test_augmentation_is_the_next_seed_after_the_batch_order():
    # seed + 1
    assert [seeds.augmentation(s) for s in (0, 5, 41)] == [1, 6, 42]


def test_a_task_of_a_sequence_steps_the_seed_by_two():
    # seed + 2 * task: seed 5, task 3 -> 11
    assert seeds.task(5, 3) == 11
    assert [seeds.task(0, t) for t in range(4)] == [0, 2, 4, 6]
    assert seeds.task(7, 0) == 7  # the first task is seeded as a plain run


def test_no_two_tasks_share_a_stream():
    streams = [f(seeds.task(3, t)) for t in range(10) for f in (seeds.data_order, seeds.augmentation)]
    assert sorted(streams) == list(range(3, 23))


def test_a_layers_weight_mask_is_the_base_plus_7919_per_layer_from_one():
    # torch.initial_seed() + 7919 * (index + 1)
    assert seeds.weight_mask(0, 0) == 7919
    assert seeds.weight_mask(5, 0) == 7924
    assert seeds.weight_mask(5, 2) == 5 + 3 * 7919 == 23762


def test_the_gaussian_draws_of_a_dropconnect_layer_are_seeded_with_its_index():
    assert [seeds.gaussian_draws(i) for i in range(3)] == [0, 1, 2]


def test_a_noise_kind_is_the_noise_seed_times_1000_plus_its_index():
    # noise_seed * 1000 + the kind's index (NoiseKind.index); pixels 0, gaussian 1, salt_pepper 2
    assert seeds.noise(1234, 0) == 1234000
    assert seeds.noise(1234, 2) == 1234002
    assert seeds.noise(0, 1) == 1


# --- regression pins ---------------------------------------------------------------------------------
# The numbers below were measured on the main commit ba09cc2, before the seeds were gathered in
# sparsebench.seeds (and checked equal, with the whole result.json of each run, after). A change to any
# derivation moves at least one of them: the batch order, augmentation, split and model seeds the test
# accuracy and loss, the noise seed the corrupted images' counts, dropout-on the passes' accuracies, the
# tasks and permutations the accuracy matrix, the layer streams the k-winners and DropConnect runs.


def _metrics(make_config, *overrides: str) -> dict:
    outcome = run(make_config(*overrides))
    assert outcome.status == "completed", outcome.message
    return json.loads((outcome.path / "result.json").read_text())["metrics"]


def _scores(split: dict) -> dict:
    """Accuracy and loss of a split (what these numbers were pinned for; ECE and the per-image bits came later)."""
    return {key: split[key] for key in ("accuracy", "loss")}


def test_a_tiny_dropout_run_measures_what_it_did_before(make_config):
    metrics = _metrics(make_config, "regularizer=dropout", "eval.train_mode_passes=3",
                       "eval.noise=[pixels,gaussian,salt_pepper]", "prune=default", "prune.fractions=[0.5,0.9]",
                       "dataset.val_size=200", "dataset.augment.crop_padding=2", "dataset.augment.flip=true",
                       "dataset.split_seed=7")
    assert _scores(metrics["test"]) == {"accuracy": 16.6, "loss": pytest.approx(2.2760035400390626, rel=1e-5)}
    assert _scores(metrics["validation"]) == {"accuracy": 18.5, "loss": pytest.approx(2.280276184082031, rel=1e-5)}
    assert metrics["noise"]["pixels"]["correct"] == [83, 71, 62, 66, 62, 63, 61, 68, 67, 63, 58]
    assert metrics["noise"]["gaussian"]["correct"] == [83, 77, 76, 72, 67, 59]
    assert metrics["noise"]["salt_pepper"]["correct"] == [83, 73, 67, 63, 75, 66, 56]
    dropout_on = metrics["dropout_on"]
    assert (dropout_on["accuracy_min"], dropout_on["accuracy_max"], dropout_on["consistency"]) == \
        pytest.approx((12.4, 13.6, 4.8))
    assert dropout_on["accuracy_mean"] == pytest.approx(13.066666666666668)
    assert metrics["prune"]["finetuned_accuracy"] == [16.4, 17.4]


def test_a_tiny_permuted_sequence_measures_what_it_did_before(make_config):
    metrics = _metrics(make_config, "regularizer=dropout", "continual=permuted", "continual.tasks=2")
    assert metrics["continual"]["accuracy_matrix"] == [pytest.approx([32.0, 7.6]), pytest.approx([35.2, 32.6])]
    assert _scores(metrics["test"]) == {"accuracy": 32.6, "loss": pytest.approx(2.208148193359375, rel=1e-5)}


def test_tiny_sparse_weight_and_gaussian_dropconnect_runs_measure_what_they_did_before(make_config):
    kwinners = _metrics(make_config, "regularizer=kwinners", "regularizer.weight_density=0.5")
    assert _scores(kwinners["test"]) == {"accuracy": 10.8, "loss": pytest.approx(2.302432861328125, rel=1e-5)}
    dropconnect = _metrics(make_config, "regularizer=dropconnect", "regularizer.inference=gaussian",
                           "regularizer.samples=5")
    assert _scores(dropconnect["test"]) == {"accuracy": 26.8, "loss": pytest.approx(2.239026123046875, rel=1e-5)}
