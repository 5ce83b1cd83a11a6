"""Human names and units of metrics: one path of each pattern against the name written out by hand."""

from __future__ import annotations

import pytest

from sparsebench.report.names import difference_label, metric_label, metric_name

EXPECTED = {
    # path: (name, unit)
    "test/accuracy": ("test accuracy", "%"),
    "train/loss": ("training loss", "cross-entropy, nats"),
    "validation/accuracy": ("validation accuracy", "%"),
    "test/ece": ("test expected calibration error (15 bins)", "fraction"),
    "mc_dropout/nll": ("test negative log-likelihood of MC dropout (softmax averaged over passes)", "nats"),
    "history/validation_loss": ("validation loss", "cross-entropy, nats"),
    "generalization_gap": ("train − test accuracy gap", "points"),
    "selection/test_accuracy_by_rule/best_val": ("test accuracy at the best-validation epoch", "%"),
    "weights/final/global/rel_0.1": ("near-zero share, |w| < 0.1·σ_init", "fraction of weights"),
    "weights/final/global/abs_0.01": ("near-zero share, |w| < 0.01", "fraction of weights"),
    "weights/final/hidden2/rel_0.01": ("near-zero share of hidden2, |w| < 0.01·σ_init", "fraction of weights"),
    "weights/init/global/abs_0.001": ("near-zero share at initialisation, |w| < 0.001", "fraction of weights"),
    "weights/change/conv1/rel_0.1": ("change of the near-zero share from initialisation of conv1, |w| < 0.1·σ_init",
                                     "fraction of weights"),
    "weights/final/hidden1/hoyer": ("Hoyer sparsity of |w| of hidden1", "0 dense, 1 one-hot"),
    "weights/init/global/hoyer": ("Hoyer sparsity of |w| at initialisation, all weights pooled (each layer "
                                  "weighted by its count of weights)", "0 dense, 1 one-hot"),
    "weights/final/global_mean/hoyer": ("Hoyer sparsity of |w|, unweighted mean over layers", "0 dense, 1 one-hot"),
    "weights/change/global_mean/hoyer": ("change of the Hoyer sparsity of |w| from initialisation, unweighted mean "
                                         "over layers", "Hoyer, 0 to 1"),
    "weights/final/output/rms_0.1": ("near-zero share of output, |w| < 0.1·RMS (each layer's own RMS, when "
                                     "measured)", "fraction of weights"),
    "weights/init/global/rms_0.01": ("near-zero share at initialisation, |w| < 0.01·RMS (each layer's own RMS, "
                                     "when measured), count-weighted over layers", "fraction of weights"),
    "weights/final_profile/mean_abs": ("mean |w|", ""),
    "weights/final_profile/curve_fractions": ("share of weights with |w| < t", "fraction of weights"),
    "activations/hidden1/hoyer": ("Hoyer sparsity of activations, hidden1", "0 dense, 1 one-hot"),
    "activations/mean/hoyer": ("Hoyer sparsity of activations, mean over hidden layers", "0 dense, 1 one-hot"),
    "activations/hidden2/zero_fraction": ("share of zero activations, hidden2", "fraction"),
    "noise/pixels/score": ("noise score, pixel noise", "correct predictions summed over levels"),
    "noise/salt_pepper/score": ("noise score, salt-and-pepper noise", "correct predictions summed over levels"),
    "noise/gaussian/accuracy": ("test accuracy under Gaussian noise", "%"),
    "noise/gaussian/levels": ("Gaussian noise level", ""),
    "prune/margin_crossing/one_shot": ("interpolated pruned fraction where accuracy falls by the margin, one-shot",
                                       "fraction of weights"),
    "prune/margin_crossing/finetuned": ("interpolated pruned fraction where accuracy falls by the margin, after "
                                        "fine-tuning", "fraction of weights"),
    "prune/largest_within_margin/one_shot": ("largest tested pruned fraction within the margin, one-shot",
                                             "fraction of weights"),
    "prune/one_shot_accuracy": ("test accuracy, pruned one-shot", "%"),
    "prune/by_method/layerwise/margin_crossing/finetuned": (
        "interpolated pruned fraction where accuracy falls by the margin, layer-wise magnitude pruning, after "
        "fine-tuning", "fraction of weights"),
    "prune/by_method/random/largest_within_margin/one_shot": (
        "largest tested pruned fraction within the margin, random pruning, one-shot", "fraction of weights"),
    "continual/weights_changed_lr_steps/mean/global": (
        "share of weights each task moved by more than the learning-rate threshold (mean)", "fraction of weights"),
    "dropout_on/accuracy_mean": ("test accuracy with dropout left on (mean over passes)", "%"),
    "dropout_on/consistency": ("test images given the same class in every pass with dropout left on", "%"),
    "speed/seconds_per_epoch": ("training time per epoch", "s"),
    "history/train_loss": ("training loss", "cross-entropy, nats"),
    "regularizer.q": ("Sparseout exponent q", ""),
    # Measured at the k-winners paper's best-test epoch: the inner metric's name, saying so.
    "best_test/test/accuracy": ("test accuracy, at the best-test epoch", "%"),
    "best_test/noise/pixels/score": ("noise score, pixel noise, at the best-test epoch",
                                     "correct predictions summed over levels"),
    # A check on two metrics of the same runs: named part by part, with their shared unit.
    "dropout_on/accuracy_mean − dropout_on/eval_mode_accuracy":
        ("test accuracy with dropout left on (mean over passes) − test accuracy in evaluation mode", "%"),
}


@pytest.mark.parametrize("path", EXPECTED)
def test_each_pattern_names_its_metric(path):
    name, unit = EXPECTED[path]
    assert (metric_name(path).name, metric_name(path).unit) == (name, unit)


def test_labels_carry_the_unit_and_a_difference_of_percentages_is_in_points():
    assert metric_label("test/accuracy") == "test accuracy (%)"
    assert metric_label("weights/final_profile/mean_abs") == "mean |w|"  # no unit, no brackets
    assert difference_label("test/accuracy") == "Δ test accuracy (points)"
    assert difference_label("speed/seconds_per_epoch") == "Δ training time per epoch (s)"


def test_unknown_paths_are_their_own_name():
    for path in ("continual/task_3/accuracy", "weights/final/global/structural_share", "best_test/something/new"):
        assert metric_name(path).name == path and metric_name(path).unit == ""
        assert metric_label(path) == path

