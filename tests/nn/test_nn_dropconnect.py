"""DropConnectLinear / DropConnectConv2d: Bernoulli(1 - p) masks on the weights, scaled 1 / (1 - p)."""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsebench.nn import (
    DropConnectConv2d,
    DropConnectLinear,
    dropconnect_conv2d,
    dropconnect_linear,
    gaussian_average,
    gaussian_moments,
)
from sparsebench.nn import dropconnect as dc_module
from sparsebench.nn.masks import keep_probability, keep_threshold, scaled_keep_mask


def _x(shape, seed=0, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _fourth_moment_terms(p):
    """Var[M - 1] and the fourth cumulant of M - 1, M = m / keep, m ~ Bernoulli(keep)."""
    keep = keep_probability(p)
    var = (1 - keep) / keep
    kappa4 = keep * (1 - keep) * (1 - 6 * keep * (1 - keep)) / keep ** 4
    return var, kappa4


def test_initialises_exactly_as_the_plain_layers():
    torch.manual_seed(0)
    plain = nn.Linear(7, 5)
    torch.manual_seed(0)
    dc = DropConnectLinear(7, 5)
    assert isinstance(dc, nn.Linear)
    assert torch.equal(dc.weight, plain.weight) and torch.equal(dc.bias, plain.bias)
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    torch.manual_seed(0)
    dcc = DropConnectConv2d(3, 4, 3, padding=1)
    assert isinstance(dcc, nn.Conv2d) and torch.equal(dcc.weight, conv.weight)


def test_from_module_reuses_parameters_and_draws_no_random_numbers():
    linear = nn.Linear(6, 4).eval()
    conv = nn.Conv2d(2, 3, 3, bias=False, padding_mode="reflect", padding=1)
    state = torch.get_rng_state()
    dc = DropConnectLinear.from_module(linear, p=0.3, mask="sample")
    dcc = DropConnectConv2d.from_module(conv, p=0.25)
    assert torch.equal(torch.get_rng_state(), state)
    assert dc.weight is linear.weight and dc.bias is linear.bias and not dc.training
    assert dcc.weight is conv.weight and dcc.bias is None and dcc.padding_mode == "reflect"
    assert (dc.p, dc.mask) == (0.3, "sample")
    assert [n for n, _ in dc.named_parameters()] == ["weight", "bias"]


def test_mean_inference_is_the_plain_layer():
    linear = nn.Linear(10, 6)
    dc = DropConnectLinear.from_module(linear).eval()
    x = _x((5, 10))
    assert torch.equal(dc(x), linear(x))
    conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")
    dcc = DropConnectConv2d.from_module(conv, p=0.5).eval()
    x = _x((2, 3, 6, 6))
    assert torch.equal(dcc(x), conv(x))


def test_batch_mask_is_shared_by_the_batch_and_masks_weights_not_bias():
    dc = DropConnectLinear(8, 5, p=0.5)
    with torch.no_grad():
        dc.bias.fill_(0.25)
    out = dc(torch.eye(8))  # row i is column i of (W * M)^T plus the bias
    masked = (out - 0.25).t()
    assert torch.allclose(masked[masked != 0], (2 * dc.weight)[masked != 0])
    assert (masked == 0).any() and (masked != 0).any()
    rows = dc(torch.ones(16, 8))
    assert torch.equal(rows, rows[:1].expand(16, -1))  # one mask for the whole batch


def test_gradient_flows_to_kept_weights_only():
    dc = DropConnectLinear(12, 7, p=0.5)
    x = _x((9, 12))
    torch.manual_seed(4)
    dc(x).sum().backward()
    torch.manual_seed(4)
    scaled = scaled_keep_mask(dc.weight.shape, 0.5)
    plain_grad = torch.ones(9, 7).t() @ x
    torch.testing.assert_close(dc.weight.grad, plain_grad * scaled)
    torch.testing.assert_close(dc.bias.grad, torch.full((7,), 9.0))


def _splitmix64_words(key, count, first=0):
    """splitmix64 (Steele, Lea & Flood 2014) in Python integers: the reference of the mask words."""
    out = []
    for n in range(first, first + count):
        z = (key + (n + 1) * 0x9E3779B97F4A7C15) % 2**64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        out.append(z ^ (z >> 31))
    return out


def test_mask_words_are_splitmix64_of_the_counter_and_the_kernel_draws_the_same():
    key = 0x123456789ABCDEF
    words = dc_module.mask_words(key, 2, 4, 3, 100, 0.5)  # 100 columns: 2 words a row at p = 0.5
    assert words.shape == (2, 3, 2)
    expected = [w - 2**64 if w >= 2**63 else w for w in _splitmix64_words(key, 12, first=2 * 3 * 2)]
    assert words.flatten().tolist() == expected
    assert dc_module.mask_words(key, 0, 1, 3, 10, 0.3).shape == (1, 3, 3)  # 16 bits an element: 4 a word
    kernel = dc_module._kernel()
    if kernel is not None:
        for p in (0.5, 0.3):
            assert torch.equal(kernel.words(key, 2, 4, 3, 100, keep_threshold(p)),
                               dc_module.mask_words(key, 2, 4, 3, 100, p))


def test_the_kernel_runs_a_vector_loop_where_the_cpu_has_one():
    """The kernel's scalar loop is correct but ~50x slower: on a CPU with AVX2 and FMA (x86 since 2013) the
    build must take a vector path, as /proc/cpuinfo's flags say it can (build_kernel: what install.sh prints)."""
    try:
        flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags to read")
    built = dc_module.build_kernel()
    if built == "torch ops":
        pytest.skip("no C++ compiler: the kernel cannot be built")
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        assert built == "avx512"
    elif {"avx2", "fma"} <= flags:
        assert built == "avx2"
    else:
        assert built == "scalar"


def test_a_compiler_without_openmp_still_builds_the_kernel_for_one_thread(monkeypatch):
    """The first build asks for OpenMP; where the compiler refuses it, the kernel is built without it (one
    thread, said in a warning), and only where that fails too do the torch ops take over."""
    import torch.utils.cpp_extension as cpp_extension

    calls = []

    def load(name, sources, extra_cflags, extra_ldflags):
        calls.append((name, extra_cflags, extra_ldflags))
        if "-fopenmp" in extra_cflags:
            raise RuntimeError("Error building extension\nclang: error: unsupported option '-fopenmp'")
        return types.SimpleNamespace(vector_path="avx2")

    monkeypatch.setattr(cpp_extension, "load", load)
    monkeypatch.setattr(dc_module, "_KERNEL", [])
    with pytest.warns(UserWarning, match=r"could not be built with OpenMP \(clang: error: unsupported option "
                                         r"'-fopenmp'\); building it to run on one thread"):
        assert dc_module._kernel().vector_path == "avx2"
    assert [flags for _, flags, _ in calls] == [["-O3", "-march=native", "-fopenmp"], ["-O3", "-march=native"]]
    assert calls[0][2] == ["-fopenmp"] and calls[1][2] == [] and calls[0][0] != calls[1][0]  # two builds, two names

    def no_compiler(name, sources, extra_cflags, extra_ldflags):
        calls.append(name)
        raise RuntimeError("no compiler")

    calls.clear()
    monkeypatch.setattr(dc_module, "_KERNEL", [])
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    with pytest.warns(UserWarning, match="could not be built"):
        assert dc_module.build_kernel() == "torch ops"
    assert len(calls) == 2


def test_sample_masks_read_the_words_bits_and_fields():
    key = 99
    word = dc_module.mask_words(key, 0, 1, 1, 64, 0.5)[0, 0, 0].item() % 2**64
    kept = dc_module.sample_keep_masks(key, 0, 1, (1, 64), 0.5)[0, 0]
    assert kept.tolist() == [bool((word >> i) & 1) for i in range(64)]
    word = dc_module.mask_words(key, 0, 1, 1, 4, 0.3)[0, 0, 0].item() % 2**64
    kept = dc_module.sample_keep_masks(key, 0, 1, (1, 4), 0.3)[0, 0]
    assert kept.tolist() == [((word >> (16 * i)) & 0xFFFF) < keep_threshold(0.3) for i in range(4)]


def _reference_linear(x, weight, bias, masks):
    """Per-example masked copies of the weights (the implementation before the kernel)."""
    masked = weight * masks  # (B, out, in)
    return torch.bmm(masked, x.unsqueeze(-1)).squeeze(-1) + bias


def _reference_conv(x, weight, bias, masks, stride, padding, groups):
    return torch.cat([F.conv2d(x[b:b + 1], weight * masks[b], bias, stride, padding, 1, groups)
                      for b in range(x.shape[0])])


def _gradients(function, *tensors):
    tensors = [t.detach().clone().requires_grad_() for t in tensors]
    out = function(*tensors)
    out.backward(_x(out.shape, seed=7, dtype=out.dtype))
    return [out.detach()] + [t.grad for t in tensors]


# Columns: whole 16-wide chunks (784); a last chunk of 5 lanes (37), 8 (24: one 8-lane half) and 13 (29: a
# second half of 5); 16-bit masks with a last chunk of 2 (50). For the kernel, batches of 45 x 784 span two
# tiles of examples in its backward (32768 floats a tile: 23 + 22), 1-bit and 16-bit masks.
_SHAPES = [(0.5, 784, 9), (0.5, 37, 9), (0.5, 24, 9), (0.5, 29, 9), (0.3, 50, 9)]


_TWO_TILES = [(0.5, 784, 45), (0.3, 784, 45)]


@pytest.mark.parametrize("path, p, cols, batch",
                         [("kernel", *shape) for shape in _SHAPES + _TWO_TILES] + [("torch", *shape) for shape in _SHAPES])
def test_sample_masks_equal_the_masked_copy_reference_in_output_and_gradients(path, p, cols, batch, monkeypatch,
                                                                            request):
    if path == "torch":
        monkeypatch.setattr(dc_module, "_KERNEL", [None])
        monkeypatch.setattr(dc_module, "_CHUNK_BYTES", 3 * 13 * cols * 14)  # 3 examples a chunk
    elif dc_module._kernel() is None:
        pytest.skip("no C++ compiler: the kernel cannot be built")
    else:  # two threads, so that the backward's grad_x partials of each thread are summed (13 rows: 4 blocks)
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        request.addfinalizer(lambda: torch.set_num_threads(threads))
    layer = DropConnectLinear(cols, 13, p=p, mask="sample")
    x = _x((batch, cols))
    torch.manual_seed(5)
    key = dc_module.draw_key()
    masks = dc_module.sample_keep_masks(key, 0, batch, layer.weight.shape, p).float() / keep_probability(p)

    def fast(x, w, b):
        torch.manual_seed(5)
        return dropconnect_linear(x, w, b, p, mask="sample")

    got = _gradients(fast, x, layer.weight, layer.bias)
    expected = _gradients(lambda x, w, b: _reference_linear(x, w, b, masks), x, layer.weight, layer.bias)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert not torch.equal(masks[0], masks[1])


@pytest.mark.parametrize("chunk_examples", [1, 2, 5])
def test_sample_masks_of_convolutions_equal_the_reference_in_output_and_gradients(chunk_examples, monkeypatch):
    conv = DropConnectConv2d(4, 6, 3, stride=2, padding=1, groups=2, p=0.25, mask="sample")
    monkeypatch.setattr(dc_module, "_CHUNK_BYTES", chunk_examples * conv.weight.numel() * 14)
    x = _x((5, 4, 7, 7))
    torch.manual_seed(2)
    key = dc_module.draw_key()
    masks = dc_module.sample_keep_masks(key, 0, 5, conv.weight.shape, 0.25).float() / keep_probability(0.25)

    def fast(x, w, b):
        torch.manual_seed(2)
        return dropconnect_conv2d(x, w, b, 0.25, mask="sample", stride=2, padding=1, groups=2)

    got = _gradients(fast, x, conv.weight, conv.bias)
    expected = _gradients(lambda x, w, b: _reference_conv(x, w, b, masks, 2, 1, 2), x, conv.weight, conv.bias)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sample_masks_on_a_gpu_equal_the_cpu_reference():
    layer = DropConnectLinear(300, 40, p=0.5, mask="sample")
    x = _x((16, 300))
    torch.manual_seed(3)
    key = dc_module.draw_key()
    masks = dc_module.sample_keep_masks(key, 0, 16, layer.weight.shape, 0.5).float() * 2
    assert torch.equal(dc_module.sample_keep_masks(key, 0, 16, layer.weight.shape, 0.5, "cuda").cpu(), masks > 0)

    def fast(x, w, b):
        torch.manual_seed(3)
        return dropconnect_linear(x.cuda(), w.cuda(), b.cuda(), 0.5, mask="sample").cpu()

    got = _gradients(fast, x, layer.weight, layer.bias)
    expected = _gradients(lambda x, w, b: _reference_linear(x, w, b, masks), x, layer.weight, layer.bias)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_sample_mask_keep_rate_and_independence_across_examples(p):
    """Keep rate within 5 binomial standard deviations of keep_probability(p); the correlation of two
    examples' masks (and of neighbouring elements and rows) within 5 / sqrt(n) of 0, its standard
    deviation under independence."""
    examples, shape = 64, (50, 70)
    kept = dc_module.sample_keep_masks(2**40 + 17, 0, examples, shape, p).double()
    keep, n = keep_probability(p), kept.numel()
    assert abs(kept.sum().item() - n * keep) <= 5 * math.sqrt(n * keep * (1 - keep))
    flat = kept.reshape(examples, -1)
    corr = torch.corrcoef(flat)  # examples x examples
    off_diagonal = corr[~torch.eye(examples, dtype=torch.bool)]
    assert off_diagonal.abs().max().item() <= 5 / math.sqrt(flat.shape[1])
    assert abs(off_diagonal.mean().item()) <= 5 / math.sqrt(flat.shape[1] * off_diagonal.numel() / 2)
    for a, b in ((kept[..., :-1], kept[..., 1:]), (kept[:, :-1], kept[:, 1:])):  # neighbouring elements, rows
        r = torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()
        assert abs(r) <= 5 / math.sqrt(a.numel())


def test_sample_masks_depend_on_the_seed_and_not_on_the_batch():
    layer = DropConnectLinear(20, 6, p=0.5, mask="sample")
    x = _x((8, 20))
    torch.manual_seed(1)
    whole = layer(x)
    torch.manual_seed(1)
    assert torch.equal(layer(x[:3]), whole[:3])  # example b's mask depends on its index, not the batch size
    torch.manual_seed(2)
    assert not torch.equal(layer(x), whole)


def _batch_mask_calls(layer, x: torch.Tensor, calls: int, apply) -> torch.Tensor:
    """The outputs of ``calls`` calls of ``layer`` (mask='batch': one mask per call) on the one example
    ``x``, stacked, without a Python loop over the calls: a call's output is ``layer(x, W * M) + b``
    with ``M`` one ``scaled_keep_mask`` of the weight's shape drawn from the global generator (checked
    here on one call), so the masks of every call are drawn in one go, as consecutive draws, and
    ``apply(x, masked weights with a leading dimension of calls, b)`` applies them."""
    weight, bias = layer.weight, layer.bias
    torch.manual_seed(1)
    one = layer(x)
    torch.manual_seed(1)
    torch.testing.assert_close(one, apply(x, (weight * scaled_keep_mask(weight.shape, layer.p, dtype=weight.dtype))
                                          .unsqueeze(0), bias))
    return apply(x, weight * scaled_keep_mask((calls, *weight.shape), layer.p, dtype=weight.dtype), bias)


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_monte_carlo_mean_and_variance_match_the_plain_layer_and_the_formula(p):
    """The sample mask gives n independent masks in one call; the batch mask (one per call) is checked
    on the masks of many calls, drawn at once."""
    torch.manual_seed(0)
    linear = nn.Linear(20, 4).double()
    x = _x((1, 20), dtype=torch.float64)
    n = 20_000
    dc = DropConnectLinear.from_module(linear, p=p, mask="sample")
    out = dc(x.expand(n, -1))
    mean, var = gaussian_moments(x, linear.weight, linear.bias, p)
    assert torch.allclose(mean, linear(x))
    torch.testing.assert_close(var, p / (1 - p) * (x ** 2) @ (linear.weight ** 2).t(), rtol=1e-4, atol=0)
    r, kappa4 = _fourth_moment_terms(p)
    terms = (x ** 2).t() * (linear.weight ** 2).t()  # (in, out): per-weight variance / r
    var_of_sample_var = (kappa4 * (terms ** 2).sum(0) + 2 * var[0] ** 2) / n
    assert ((out.mean(0) - mean[0]).abs() <= 5 * (var[0] / n).sqrt()).all()
    assert ((out.var(0) - var[0]).abs() <= 5 * var_of_sample_var.sqrt()).all()
    # batch masks: one per call
    batch = DropConnectLinear.from_module(linear, p=p)
    calls = 3000
    draws = _batch_mask_calls(batch, x, calls, lambda i, w, b: torch.einsum("bi,coi->co", i, w) + b)
    assert ((draws.mean(0) - mean[0]).abs() <= 5 * (var[0] / calls).sqrt()).all()


def test_conv_batch_mask_expectation_is_the_plain_convolution():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3).double()
    dcc = DropConnectConv2d.from_module(conv, p=0.5)
    x = _x((1, 2, 5, 5), dtype=torch.float64)
    calls = 2000

    def convolve(image, weights, bias):  # every call's masked kernel at once, as a product with the image's patches
        patches = F.unfold(image, weights.shape[-2:])[0]  # (in x kh x kw, positions)
        out = torch.einsum("pl,cop->col", patches, weights.flatten(2)) + bias[:, None]
        size = [s - k + 1 for s, k in zip(image.shape[-2:], weights.shape[-2:])]
        return out.view(*out.shape[:2], *size)

    draws = _batch_mask_calls(dcc, x, calls, convolve)
    mean, var = gaussian_moments(x, conv.weight, conv.bias, 0.5,
                                 lambda i, w, b=None: F.conv2d(i, w, b))
    assert torch.allclose(mean, conv(x))
    assert ((draws.mean(0) - mean[0]).abs() <= 5 * (var[0] / calls).sqrt()).all()
    assert ((draws.var(0) / var[0] - 1).abs() < 0.2).all()


def test_gaussian_draws_have_the_formula_mean_and_variance():
    mean = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    var = torch.tensor([[0.25, 1.0, 4.0]], dtype=torch.float64)
    n = 50_000
    first = gaussian_average(mean, var, n)  # identity: the mean of the draws
    second = gaussian_average(mean, var, n, torch.square)  # E[u^2] = mean^2 + var
    assert first.shape == second.shape == (1, 3)
    assert ((first - mean).abs() <= 5 * (var / n).sqrt()).all()
    sd_of_square = (2 * var ** 2 + 4 * mean ** 2 * var).sqrt()  # sd of u^2 for a Gaussian u
    assert ((second - (mean ** 2 + var)).abs() <= 5 * sd_of_square / math.sqrt(n)).all()


def test_gaussian_inference_is_seeded_per_call_and_independent_of_the_batch():
    torch.manual_seed(0)
    layer = DropConnectLinear(30, 8, p=0.5, inference="gaussian", samples=50).eval()
    x = _x((6, 30))
    state = torch.get_rng_state()
    out = layer(x)
    assert torch.get_rng_state().equal(state)  # the global generator is not used
    torch.manual_seed(123)
    assert torch.equal(layer(x), out)  # the same numbers whatever the global state
    # an example's output depends neither on the other examples nor on the batch size
    torch.testing.assert_close(layer(x[2:3]), out[2:3])
    torch.testing.assert_close(layer(x[2]), out[2])  # unbatched input
    other = DropConnectLinear.from_module(layer, p=0.5, inference="gaussian", samples=50, seed=1).eval()
    assert not torch.equal(other(x), out)  # another seed, other draws
    conv = DropConnectConv2d(2, 3, 3, p=0.5, inference="gaussian", samples=20).eval()
    images = _x((4, 2, 6, 6))
    state = torch.get_rng_state()
    conv_out = conv(images)
    assert torch.get_rng_state().equal(state) and torch.equal(conv(images), conv_out)
    torch.testing.assert_close(conv(images[1:2]), conv_out[1:2])
    torch.testing.assert_close(conv(images[1]), conv_out[1])


def test_then_receives_each_draw_as_a_batch_of_examples():
    """``then`` (what a model applies after the layer) gets draws x examples as one batch, may change
    the shape, and replaces the activation only while the layer averages Gaussian draws."""
    conv = DropConnectConv2d(2, 3, 3, padding=1, p=0.5, inference="gaussian", samples=7).eval()
    seen = []

    def pool_then_relu(u):
        seen.append(tuple(u.shape))
        return F.relu(F.max_pool2d(u, 2))

    out = conv(_x((4, 2, 6, 6)), then=pool_then_relu)
    assert out.shape == (4, 3, 3, 3) and sum(shape[0] for shape in seen) == 7 * 4
    assert all(shape[1:] == (3, 6, 6) for shape in seen)
    assert conv.averages_gaussian_draws and not conv.train().averages_gaussian_draws
    assert conv(_x((4, 2, 6, 6)), then=pool_then_relu).shape == (4, 3, 6, 6)  # training: pre-activation


def test_gaussian_inference_averages_the_activation_over_draws():
    torch.manual_seed(0)
    linear = nn.Linear(30, 8).double()
    x = _x((4, 30), dtype=torch.float64)
    mean, var = gaussian_moments(x, linear.weight, linear.bias, 0.5)
    sd = var.sqrt()
    samples = 20_000
    identity = DropConnectLinear.from_module(linear, inference="gaussian", activation=None,
                                             samples=samples).eval()
    assert ((identity(x) - mean).abs() <= 5 * sd / math.sqrt(samples)).all()
    relu = DropConnectLinear.from_module(linear, inference="gaussian", samples=samples).eval()
    out = relu(x)
    z = mean / sd
    normal = torch.distributions.Normal(0.0, 1.0)
    expected = mean * normal.cdf(z) + sd * normal.log_prob(z).exp()  # E[relu(N(mean, sd^2))]
    assert (out >= 0).all()
    assert ((out - expected).abs() <= 5 * sd / math.sqrt(samples)).all()
    conv = nn.Conv2d(2, 3, 3).double()
    images = _x((2, 2, 5, 5), dtype=torch.float64)
    mean, var = gaussian_moments(images, conv.weight, conv.bias, 0.5, lambda i, w, b=None: F.conv2d(i, w, b))
    sd = var.sqrt()
    out = DropConnectConv2d.from_module(conv, inference="gaussian", samples=samples).eval()(images)
    z = mean / sd
    expected = mean * normal.cdf(z) + sd * normal.log_prob(z).exp()
    assert ((out - expected).abs() <= 5 * sd / math.sqrt(samples)).all()


def test_functional_forms_and_p_zero():
    w, b, x = _x((4, 6)), _x((4,)), _x((3, 6))
    assert torch.equal(dropconnect_linear(x, w, b, p=0.0), F.linear(x, w, b))
    assert torch.equal(dropconnect_linear(x, w, b, training=False), F.linear(x, w, b))
    wc, xc = _x((3, 2, 3, 3)), _x((1, 2, 5, 5))
    assert torch.equal(dropconnect_conv2d(xc, wc, None, training=False, padding=1), F.conv2d(xc, wc, None, 1, 1))


@pytest.mark.parametrize("kwargs, name", [
    ({"p": 1.5}, "p=1.5"), ({"p": 1.0}, "p=1.0"), ({"p": -0.5}, "p=-0.5"), ({"mask": "row"}, "mask='row'"),
    ({"inference": "mc"}, "inference='mc'"), ({"samples": 0}, "samples=0"),
    ({"activation": "relu"}, "activation='relu'"), ({"max_mask_bytes": 0}, "max_mask_bytes=0"),
    ({"seed": -1}, "seed=-1"), ({"seed": 0.5}, "seed=0.5"),
])
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match="is not allowed") as info:
        DropConnectLinear(4, 3, **kwargs)
    assert str(info.value).startswith(name)
    with pytest.raises(ValueError, match="is not allowed"):
        DropConnectConv2d(2, 3, 3, **kwargs)


def test_from_module_rejects_other_layers():
    with pytest.raises(ValueError, match="nn.Linear"):
        DropConnectLinear.from_module(nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="nn.Conv2d"):
        DropConnectConv2d.from_module(nn.Linear(1, 1))


def test_gaussian_average_in_chunks_equals_all_draws_at_once(monkeypatch):
    """Chunks of draws (here 40 values, so 3 draws a chunk) give the average over every draw at once, taken
    with the same shared noise (the generator's first samples x units normals)."""
    monkeypatch.setattr(dc_module, "_DRAW_CHUNK_ELEMENTS", 40)
    mean, var = _x((7, 12), seed=1), _x((7, 12), seed=2).abs()
    got = gaussian_average(mean, var, 9, torch.relu, torch.Generator().manual_seed(4))
    noise = torch.randn((9, 1, 12), generator=torch.Generator().manual_seed(4))
    expected = torch.relu(mean + noise * var.sqrt()).mean(0)
    torch.testing.assert_close(got, expected)
    pooled = gaussian_average(mean.view(7, 3, 2, 2), var.view(7, 3, 2, 2), 9, lambda u: u.amax((2, 3)),
                              torch.Generator().manual_seed(4))
    assert pooled.shape == (7, 3)
