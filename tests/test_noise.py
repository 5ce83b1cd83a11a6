"""The noise protocols: exact pixel counts and values, seeding independent of the model, clean level."""

from __future__ import annotations

import torch

from sparsebench.data import load_splits
from sparsebench.metrics.evaluation import evaluate
from sparsebench.metrics.noise import corrupted, draws, noise_robustness
from sparsebench.models import build_model
from sparsebench.regularizers import build_regularizer
from sparsebench.schemas import EvalConfig


def _setup(make_config, *overrides):
    cfg = make_config(*overrides)
    data = load_splits(cfg.dataset, torch.device("cpu"))
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, build_regularizer(cfg.regularizer), tuple(cfg.dataset.shape), 10)
    return cfg, data, model


def test_pixel_noise_sets_exactly_int_n_eta_positions_to_mean_plus_two_std(make_config):
    _, data, _ = _setup(make_config)
    images = data.test.images.float() / 255
    state = draws("pixels", images, data, seed=5)
    value = (data.mean + 2 * data.std).item()
    assert abs(value - (0.1307 + 2 * 0.3081)) < 1e-6
    for eta in (0.05, 0.15, 0.35, 0.5):
        noisy = corrupted(images, "pixels", eta, state)
        changed = (noisy != images).view(len(images), -1)
        set_to_value = (noisy == value).view(len(images), -1)
        # No MNIST pixel (k/255) equals 0.7469, so every chosen position shows as changed.
        assert torch.all(changed.sum(1) == int(784 * eta))
        assert torch.equal(changed, set_to_value)
    assert torch.equal(corrupted(images, "pixels", 0.0, state), images)


def test_pixel_noise_on_colour_images_sets_every_channel_of_a_position():
    images = torch.rand(50, 3, 8, 8) * 0.5

    class Stats:
        mean = torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1)
        std = torch.tensor([0.1, 0.1, 0.1]).view(3, 1, 1)

    state = draws("pixels", images, Stats, seed=0)
    noisy = corrupted(images, "pixels", 0.25, state)
    changed = noisy != images
    assert torch.equal(changed[:, 0], changed[:, 1]) and torch.equal(changed[:, 0], changed[:, 2])
    assert torch.all(changed[:, 0].flatten(1).sum(1) == 16)
    values = noisy.permute(0, 2, 3, 1)[changed[:, 0]]
    assert torch.allclose(values, torch.tensor([0.3, 0.4, 0.5]).expand_as(values))


def test_salt_pepper_and_gaussian(make_config):
    _, data, _ = _setup(make_config)
    images = data.test.images.float() / 255
    state = draws("salt_pepper", images, data, seed=1)
    noisy = corrupted(images, "salt_pepper", 0.2, state)
    moved = (noisy != images).view(len(images), -1).sum(1)
    assert torch.all(moved <= int(784 * 0.2))  # a pepper on a black pixel changes nothing
    assert set(noisy[noisy != images].unique().tolist()) <= {0.0, 1.0}
    gauss = corrupted(images, "gaussian", 0.3, draws("gaussian", images, data, seed=1))
    assert gauss.min() >= 0 and gauss.max() <= 1
    assert 0.1 < (gauss - images).std() < 0.3  # clipping shrinks the spread below sigma


def test_clean_level_reproduces_test_accuracy_and_scores_sum_levels(make_config):
    cfg, data, model = _setup(make_config, "eval.noise=[pixels,gaussian,salt_pepper]")
    result = noise_robustness(model, data, cfg.eval)
    clean = evaluate(model, data.test.inputs, data.test.labels, 500).accuracy
    for kind in ("pixels", "gaussian", "salt_pepper"):
        assert result[kind]["levels"][0] == 0.0
        assert abs(result[kind]["accuracy"][0] - clean) < 1e-9
        assert result[kind]["score"] == sum(result[kind]["correct"])
    assert len(result["pixels"]["accuracy"]) == 11


def test_every_model_sees_the_same_noisy_images(make_config):
    cfg, data, first = _setup(make_config, "eval.noise=[pixels,salt_pepper]", "eval.pixel_levels=[0.1,0.3]")
    _, _, second = _setup(make_config, "eval.noise=[pixels,salt_pepper]", "eval.pixel_levels=[0.1,0.3]",
                          "seed=9", "regularizer=dropout")
    seen = {}
    for name, model in (("first", first), ("second", second)):
        inputs = []
        model.register_forward_pre_hook(lambda m, args, store=inputs: store.append(args[0].clone()))
        noise_robustness(model, data, cfg.eval)
        seen[name] = torch.cat(inputs)
    assert torch.equal(seen["first"], seen["second"])
    other = EvalConfig(noise=["pixels"], pixel_levels=[0.1, 0.3], noise_seed=cfg.eval.noise_seed + 1)
    inputs = []
    first.register_forward_pre_hook(lambda m, args: inputs.append(args[0].clone()))
    noise_robustness(first, data, other)
    assert not torch.equal(torch.cat(inputs), seen["first"][:len(torch.cat(inputs))])
