"""Measurements on constructed models and activations, checked against hand computations."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
import scipy.special
import torch
from torch import nn

from sparsebench.metrics.activations import ActivationSparsity, hoyer
from sparsebench.metrics.evaluation import (
    evaluate,
    expected_calibration_error,
    pack_correct,
    stochastic_layers,
    unpack_correct,
    with_dropout_on,
)
from sparsebench.metrics.weights import (
    magnitude_profile,
    near_zero_fractions,
    scale_free_sparsity,
    weight_stds,
)
from sparsebench.models import MODELS, build_model
from sparsebench.nn import (
    DropConnectConv2d,
    DropConnectLinear,
    Dropout,
    Dropout2d,
    KWinners,
    KWinners2d,
    Sparseout,
    SparseWeights,
)
from sparsebench.regularizers import REGULARIZERS, build_regularizer


def _mlp(hidden=(4,)):
    return build_model(MODELS["mlp"].Config(hidden=list(hidden)), build_regularizer(REGULARIZERS["none"].Config()),
                       (1, 2, 2), 2)


class _Masked(nn.Module):
    """A weight whose zeros are structural (fixed sparse connectivity), as SparseWeights says of its own."""

    def __init__(self, layer):
        super().__init__()
        self.module = layer

    def structural_mask(self):
        return self.module.weight == 0

    def forward(self, x):
        return self.module(x)


def test_near_zero_fractions_per_layer_and_global():
    net = _mlp()
    with torch.no_grad():
        net.hidden1.weight.weight.copy_(torch.tensor([[0.0005, 0.005, 0.5, -0.0001]] * 4))  # 16 weights
        net.output.weight.copy_(torch.tensor([[0.5, 0.5, 0.5, -0.005], [0.5, 0.5, 0.5, 0.5]]))  # 8 weights
    stds = {"hidden1": 1.0, "output": 0.1}
    result = near_zero_fractions(net, [1e-3, 1e-2], [0.01, 0.1], stds)
    assert result["hidden1"]["abs_0.001"] == 0.5 and result["hidden1"]["abs_0.01"] == 0.75
    assert result["output"]["abs_0.001"] == 0 and result["output"]["abs_0.01"] == 1 / 8
    assert result["global"]["abs_0.01"] == (12 + 1) / 24
    # relative: hidden1 below 0.01 * 1.0 and 0.1 * 1.0; output below 0.001 and 0.01
    assert result["hidden1"]["rel_0.01"] == 0.75 and result["hidden1"]["rel_0.1"] == 0.75
    assert result["output"]["rel_0.1"] == 1 / 8
    assert result["global"]["count"] == 24 and result["global"]["structural"] == 0


def test_structural_zeros_are_counted_apart():
    net = _mlp()
    with torch.no_grad():
        net.hidden1.weight.weight.copy_(torch.tensor([[0.0, 0.0, 0.5, 0.0005]] * 4))
    net.hidden1.weight = _Masked(net.hidden1.weight)
    result = near_zero_fractions(net, [1e-3], [], {})
    assert result["hidden1"]["structural"] == 0.5
    assert result["hidden1"]["count"] == 8 and result["hidden1"]["abs_0.001"] == 0.5


def _set(net, hidden1, output):
    with torch.no_grad():
        net.hidden1.weight.weight.copy_(torch.tensor(hidden1))  # 4 x 4
        net.output.weight.copy_(torch.tensor(output))  # 2 x 4


def test_hoyer_of_weights_is_one_for_one_hot_zero_for_constant_and_pooled_by_count():
    net = _mlp()
    _set(net, [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, -2.0, 0.0], [0.0] * 4, [0.0] * 4],  # one weight carries everything
         [[0.5, -0.5, 0.5, 0.5], [-0.5, 0.5, 0.5, -0.5]])  # every weight the same magnitude
    result = scale_free_sparsity(net, [])
    assert result["hidden1"]["hoyer"] == pytest.approx(1.0)
    assert result["output"]["hoyer"] == pytest.approx(0.0, abs=1e-12)
    # Pooled: 24 weights, one of 2.0, eight of 0.5, fifteen zeros: |w|_1 = 6, |w|_2 = sqrt(4 + 8 / 4) = sqrt(6).
    assert result["global"]["hoyer"] == pytest.approx((math.sqrt(24) - 6 / math.sqrt(6)) / (math.sqrt(24) - 1))
    assert result["global_mean"]["hoyer"] == pytest.approx(0.5)  # (1 + 0) / 2: each layer counts once


def test_hoyer_and_rms_shares_of_weights_by_hand_and_unmoved_by_scale():
    net = _mlp()
    hidden1 = [[1.0, -2.0, 3.0, 4.0]] * 4  # |w|_1 = 40, |w|_2 = sqrt(4 * 30) = sqrt(120), RMS sqrt(7.5) = 2.739
    output = [[0.1, 0.1, 0.1, 1.0], [0.1, -0.1, 0.1, -1.0]]  # RMS sqrt((6 * 0.01 + 2) / 8) = 0.5074
    _set(net, hidden1, output)
    result = scale_free_sparsity(net, [0.5, 1.0])
    assert result["hidden1"]["hoyer"] == pytest.approx((4 - 40 / math.sqrt(120)) / 3)
    # hidden1 below 0.5 x 2.739 = 1.37: the 1s (4 of 16); below 2.739: the 1s and 2s (8 of 16)
    assert result["hidden1"]["rms_0.5"] == 4 / 16 and result["hidden1"]["rms_1"] == 8 / 16
    # output below 0.254 and below 0.507: the six 0.1s
    assert result["output"]["rms_0.5"] == 6 / 8 and result["output"]["rms_1"] == 6 / 8
    # global: counts summed over layers (each against its own RMS), not the mean of the two shares
    assert result["global"]["rms_0.5"] == (4 + 6) / 24 and result["global"]["rms_1"] == (8 + 6) / 24
    # Each layer scaled by a factor of its own: every per-layer number, the count-weighted shares and the
    # mean over layers stay (up to float32 rounding of the weights); the pooled Hoyer does not, as the
    # scale of each layer decides how much it weighs in the pool.
    _set(net, [[7 * w for w in row] for row in hidden1], [[0.01 * w for w in row] for row in output])
    scaled = scale_free_sparsity(net, [0.5, 1.0])
    for layer in ("hidden1", "output", "global_mean"):
        assert scaled[layer] == pytest.approx(result[layer], rel=1e-6), layer
    assert {k: scaled["global"][k] for k in ("rms_0.5", "rms_1")} == {"rms_0.5": 10 / 24, "rms_1": 14 / 24}
    # pooled: |w|_1 = 7 x 40 + 0.01 x 2.6, |w|_2 = sqrt(49 x 120 + 1e-4 x 2.06), n = 24
    l1, l2 = 280 + 0.026, math.sqrt(5880 + 2.06e-4)
    assert scaled["global"]["hoyer"] == pytest.approx((math.sqrt(24) - l1 / l2) / (math.sqrt(24) - 1), rel=1e-6)
    assert scaled["global"]["hoyer"] != pytest.approx(result["global"]["hoyer"], abs=0.01)


def test_hoyer_and_rms_shares_of_uniform_weights_match_the_distribution():
    # w ~ U(-a, a): RMS = a / sqrt(3), so P(|w| < f RMS) = f / sqrt(3); E|w| / RMS = sqrt(3) / 2, so Hoyer
    # tends to (sqrt(n) - sqrt(n) sqrt(3) / 2) / (sqrt(n) - 1).
    net = build_model(MODELS["mlp"].Config(hidden=[200]), build_regularizer(REGULARIZERS["none"].Config()),
                      (1, 20, 20), 2)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        net.hidden1.weight.weight.uniform_(-0.3, 0.3, generator=generator)
    n = 200 * 400
    result = scale_free_sparsity(net, [0.1, 0.5])
    assert result["hidden1"]["rms_0.1"] == pytest.approx(0.1 / math.sqrt(3), abs=0.003)
    assert result["hidden1"]["rms_0.5"] == pytest.approx(0.5 / math.sqrt(3), abs=0.005)
    expected = (math.sqrt(n) - math.sqrt(n) * math.sqrt(3) / 2) / (math.sqrt(n) - 1)
    assert result["hidden1"]["hoyer"] == pytest.approx(expected, abs=0.003)


def test_structural_zeros_are_left_out_of_hoyer_and_the_rms_shares():
    net = _mlp()
    _set(net, [[0.0, 0.0, 3.0, 4.0]] * 4, [[1.0] * 4] * 2)
    net.hidden1.weight = _Masked(net.hidden1.weight)
    result = scale_free_sparsity(net, [1.0])
    # The 8 learnable weights 3, 4, ...: |w|_1 = 28, |w|_2 = 10 (with the zeros it would be (4 - 2.8) / 3 = 0.4)
    assert result["hidden1"]["hoyer"] == pytest.approx((math.sqrt(8) - 2.8) / (math.sqrt(8) - 1))
    # RMS sqrt(12.5) = 3.54: the 3s lie below it (4 of 8, the structural zeros not counted)
    assert result["hidden1"]["rms_1"] == 4 / 8
    assert result["global"]["rms_1"] == 4 / 16  # 8 learnable + 8 output weights, none of the latter below


def test_magnitude_profile_is_a_distribution():
    torch.manual_seed(0)
    net = _mlp((50,))
    profile = magnitude_profile(net)
    assert math.isclose(sum(profile["histogram_fractions"]), 1.0, rel_tol=1e-9)
    assert profile["curve_fractions"] == sorted(profile["curve_fractions"]) and profile["curve_fractions"][-1] == 1.0
    assert weight_stds(net)["hidden1"] > 0


def test_hoyer_extremes_and_a_hand_value():
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    assert torch.allclose(hoyer(x), torch.tensor([0.0, 1.0, 1.0, (2 - math.sqrt(2)) / 1.0]))


def test_activation_sparsity_is_measured_on_each_hidden_block():
    net = _mlp((4,))
    with torch.no_grad():
        net.hidden1.weight.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, -1.0, 0, 0]]))
        net.hidden1.weight.bias.zero_()
    x = torch.tensor([[[[1.0, 1.0], [0, 0]]], [[[-1.0, 2.0], [0, 0]]]])
    with ActivationSparsity(net) as recorder:
        net(x)
    result = recorder.result()["hidden1"]
    # relu outputs: [1, 0, 1, 0] and [0, 1, 2, 0]
    assert result["zero_fraction"] == 0.5 and result["units"] == 4
    assert math.isclose(result["hoyer"], float(hoyer(torch.tensor([[1.0, 0, 1, 0], [0, 1, 2, 0]])).mean()), rel_tol=1e-6)
    assert recorder.result()["mean"] == {"zero_fraction": 0.5, "hoyer": result["hoyer"]}  # one layer: itself
    net(x)  # outside the context: hooks removed, nothing more counted
    assert recorder.result()["hidden1"] == result


def test_evaluate_counts_accuracy_and_loss_and_restores_mode():
    net = _mlp((4,))
    x = torch.randn(10, 1, 2, 2)
    logits = net(x).detach()
    labels = logits.argmax(1)
    labels[:3] = 1 - labels[:3]
    net.train()
    result = evaluate(net, x, labels, batch_size=4)
    assert result.accuracy == 70.0
    assert math.isclose(result.loss, nn.functional.cross_entropy(logits, labels).item(), rel_tol=1e-5)
    assert net.training


# --- calibration and per-image correctness ---------------------------------------------------------------


def test_ece_of_a_hand_computed_example():
    # 15 bins of width 1/15. Confidences 0.95, 0.95 share the last bin (accuracy 1/2: gap 0.45, weight 2/6);
    # 0.62 lies in (0.6, 0.667] (correct: gap 0.38), 0.3 in (0.267, 0.333] (wrong: gap 0.3), and 0.2 (correct,
    # gap 0.8) and 0.8 (wrong, gap 0.8) in bins of their own, whose gaps would cancel in one bin.
    confidence = torch.tensor([0.95, 0.95, 0.62, 0.3, 0.2, 0.8], dtype=torch.float64)
    correct = torch.tensor([True, False, True, False, True, False])
    expected = (2 * 0.45 + 0.38 + 0.3 + 0.8 + 0.8) / 6
    assert expected_calibration_error(confidence, correct) == pytest.approx(expected, abs=1e-12)
    # A perfectly calibrated bin: four at 0.75 with three right.
    assert expected_calibration_error(torch.full((4,), 0.75), torch.tensor([1, 1, 1, 0])) == pytest.approx(0.0)


def _ece_reference(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Guo et al. 2017 written out: per bin ((m-1)/M, m/M] the mean accuracy and mean confidence."""
    confidence, predicted = probabilities.max(1), probabilities.argmax(1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs((predicted[inside] == labels[inside]).mean() - confidence[inside].mean())
    return total


def test_evaluate_reports_the_ece_and_correctness_of_the_softmax_probabilities():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(200, 5, generator=generator) * 2
    labels = torch.randint(0, 5, (200,), generator=generator)
    result = evaluate(nn.Identity(), logits, labels, batch_size=64)  # the inputs are the logits
    probabilities = scipy.special.softmax(logits.double().numpy(), axis=1)
    assert result.ece == pytest.approx(_ece_reference(probabilities, labels.numpy()), abs=1e-6)
    assert result.loss == pytest.approx(-np.log(probabilities[np.arange(200), labels.numpy()]).mean(), rel=1e-5)
    assert result.correct.tolist() == (probabilities.argmax(1) == labels.numpy()).tolist()
    assert result.as_dict() == {"accuracy": result.accuracy, "loss": result.loss, "ece": result.ece}


def test_correct_bits_are_base64_of_packbits_and_round_trip():
    correct = torch.tensor([1, 0, 1, 1, 0, 0, 0, 0, 1], dtype=torch.bool)
    # Bits 10110000 10000000 (the last byte zero-padded): bytes 0xb0 0x80, in base64 101100|001000|0000(00) = "sIA=".
    assert pack_correct(correct) == "sIA="
    assert base64.b64decode("sIA=") == bytes([0xB0, 0x80])
    assert unpack_correct("sIA=", 9).tolist() == correct.tolist()
    many = torch.rand(10_001, generator=torch.Generator().manual_seed(0)) < 0.9
    assert unpack_correct(pack_correct(many), len(many)).tolist() == many.tolist()


class _TwoPasses(nn.Module):
    """A stochastic layer whose training-mode passes give fixed log-probabilities, one pass after the other."""

    stochastic = True

    def __init__(self, passes):
        super().__init__()
        self.passes, self.calls = passes, 0

    def forward(self, x):
        if not self.training:
            return x
        out = self.passes[self.calls % len(self.passes)]
        self.calls += 1
        return out


def test_mc_dropout_averages_the_probabilities_of_the_passes():
    # Pass 1: p = (0.9, 0.1) and (0.2, 0.8); pass 2: (0.5, 0.5) and (0.7, 0.3); both labels 0.
    # Averaged: (0.7, 0.3) right with confidence 0.7; (0.45, 0.55) wrong with confidence 0.55.
    passes = [torch.tensor([[0.9, 0.1], [0.2, 0.8]]).log(), torch.tensor([[0.5, 0.5], [0.7, 0.3]]).log()]
    labels = torch.tensor([0, 0])
    evaluation_mode = torch.tensor([[2.0, 0.0], [2.0, 0.0]])  # both right in evaluation mode
    found = with_dropout_on(nn.Sequential(_TwoPasses(passes)), evaluation_mode, labels, batch_size=2, passes=2,
                            seed=0)
    mc = found["mc_dropout"]
    assert mc["passes"] == 2
    assert mc["accuracy"] == pytest.approx(50.0)
    assert mc["nll"] == pytest.approx(-(math.log(0.7) + math.log(0.45)) / 2, rel=1e-6)
    assert mc["ece"] == pytest.approx((abs(1 - 0.7) + abs(0 - 0.55)) / 2, rel=1e-6)
    # The same passes give the per-pass accuracies: 50% (pass 1) and 100% (pass 2).
    assert found["dropout_on"]["eval_mode_accuracy"] == 100.0
    assert found["dropout_on"]["accuracy_mean"] == pytest.approx(75.0)


def test_mc_dropout_nll_stays_finite_where_one_pass_gives_the_label_no_probability():
    # Pass 1 puts exp(-200) on the label (0 in float32); pass 2 puts 1/2: the average is about 1/4.
    passes = [torch.tensor([[0.0, 200.0]]), torch.tensor([[0.0, 0.0]])]
    found = with_dropout_on(nn.Sequential(_TwoPasses(passes)), torch.zeros(1, 2), torch.tensor([0]), batch_size=1,
                            passes=2, seed=0)
    assert found["mc_dropout"]["nll"] == pytest.approx(math.log(4.0), rel=1e-6)


# --- the layers that dropout-on passes leave in training mode ------------------------------------------


def _every_layer_kind():
    """A conv net holding every stochastic kind (torch's and sparsebench's) and the deterministic kinds
    between them; the stochastic ones listed by hand."""
    torch.manual_seed(0)
    torch_dropouts = [nn.Dropout(0.3), nn.Dropout1d(0.3), nn.Dropout2d(0.3), nn.Dropout3d(0.3),
                      nn.AlphaDropout(0.3), nn.FeatureAlphaDropout(0.3)]
    ours = [DropConnectConv2d(1, 4, 3, p=0.3, activation=None), Dropout2d(0.3), Sparseout(0.3, q=1.5),
            Dropout(0.3), DropConnectLinear(256, 16, p=0.3, activation=None)]
    conv, spatial, sparseout, dropout, linear = ours
    model = nn.Sequential(
        conv, nn.BatchNorm2d(4), nn.ReLU(), spatial, KWinners2d(4, percent_on=0.5), torch_dropouts[2],
        torch_dropouts[3], torch_dropouts[4], sparseout, nn.Flatten(), torch_dropouts[0], torch_dropouts[1],
        torch_dropouts[5], linear, nn.BatchNorm1d(16), KWinners(16, percent_on=0.5), dropout,
        SparseWeights(nn.Linear(16, 3), sparsity=0.5), nn.Identity())
    expected = [conv, spatial, torch_dropouts[2], torch_dropouts[3], torch_dropouts[4], sparseout,
                torch_dropouts[0], torch_dropouts[1], torch_dropouts[5], linear, dropout]
    return model, expected


def test_stochastic_layers_are_every_random_layer_and_only_those():
    model, expected = _every_layer_kind()
    assert [id(m) for m in stochastic_layers(model)] == [id(m) for m in expected]


def test_a_layer_says_itself_whether_it_is_stochastic():
    class Noisy(nn.Module):  # a new random layer: evaluation finds it without being told of it
        stochastic = True

    class FixedDropout(nn.Dropout):  # a torch dropout subclass that opts out
        stochastic = False

    noisy, fixed, plain = Noisy(), FixedDropout(0.5), nn.Dropout(0.5)
    assert stochastic_layers(nn.Sequential(noisy, fixed, plain, nn.ReLU())) == [noisy, plain]


def test_dropout_on_passes_sample_exactly_the_stochastic_layers():
    """The reference: the model in evaluation mode with the hand-listed random layers in training mode,
    the global generator seeded with the seed, three passes over the batches."""
    model, expected = _every_layer_kind()
    x = torch.randn(40, 1, 10, 10)
    labels = torch.randint(0, 3, (40,))
    with torch.no_grad():
        model.train()
        model(x)  # moves batch norm statistics and k-winners duty cycles off their initial values
    bn_state = {k: v.clone() for k, v in model.state_dict().items()}

    result = with_dropout_on(model, x, labels, batch_size=16, passes=3, seed=11)["dropout_on"]

    assert model.training and all(torch.equal(v, bn_state[k]) for k, v in model.state_dict().items())
    model.eval()
    with torch.no_grad():
        eval_accuracy = (model(x).argmax(1) == labels).double().mean().item() * 100
        for layer in expected:
            layer.train()
        torch.manual_seed(11)
        accuracies = [(torch.cat([model(x[s:s + 16]) for s in range(0, 40, 16)]).argmax(1) == labels)
                      .double().mean().item() * 100 for _ in range(3)]
    assert result["eval_mode_accuracy"] == pytest.approx(eval_accuracy)
    assert result["accuracy_mean"] == pytest.approx(sum(accuracies) / 3)
    assert (result["accuracy_min"], result["accuracy_max"]) == pytest.approx((min(accuracies), max(accuracies)))
    assert len(set(accuracies)) > 1  # the passes did sample
