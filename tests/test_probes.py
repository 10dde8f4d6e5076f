"""Probes: LR range test, gradient noise scale, sharpness, per-layer stats and their findings."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.utils.data import TensorDataset

import nbtrain
from nbtrain import Callback, History, TrainConfig, Trainer, train
from nbtrain.probes.findings import (
    layer_findings,
    noise_scale_findings,
    probe_findings,
    range_test_findings,
    sharpness_findings,
)
from nbtrain.probes.layers import LayerStats, layer_stats_dataframe
from nbtrain.probes.lr_range import LRRangeResult, ema_smooth, lr_range_test, suggest_lr
from nbtrain.probes.noise_scale import NoiseScaleResult, gradient_noise_scale
from nbtrain.probes.sharpness import SharpnessResult, estimate_sharpness, stability_threshold

from tasks import make_mlp, make_regression

CFG = TrainConfig(lr=1e-2, grad_clip=1.0, epochs=2, batch_size=16, scheduler="none", name="tiny")


@pytest.fixture
def data():
    x, y = make_regression(128)
    xv, yv = make_regression(48, seed=1)
    return TensorDataset(x, y), TensorDataset(xv, yv)


def _dropout_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 1))


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _timeless(history: History) -> tuple[list, list]:
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in history.epochs], history.steps


def test_probe_names_are_exported_from_nbtrain_and_mean_one_thing():
    for name in ("LRRangeResult", "LayerStats", "NoiseScaleResult", "SharpnessResult", "estimate_sharpness",
                 "gradient_noise_scale", "layer_stats_dataframe", "lr_range_test", "probe_findings",
                 "stability_threshold"):
        assert name in nbtrain.__all__, name
    assert nbtrain.estimate_sharpness is estimate_sharpness and nbtrain.probe_findings is probe_findings
    # "sharpness" is the measured value (SharpnessResult.sharpness), not also a function
    assert "sharpness" not in nbtrain.__all__
    assert [f.name for f in dataclasses.fields(SharpnessResult)][:2] == ["sharpness", "preconditioned"]


# -- LR range test -------------------------------------------------------------------------
def test_range_test_sweeps_exponentially_and_smooths_with_bias_correction(data):
    res = lr_range_test(make_mlp(), data[0], start_lr=1e-5, end_lr=1e-1, num_steps=20, smoothing=0.8, diverge_factor=1e9)
    assert isinstance(res, LRRangeResult)
    assert len(res.lrs) == len(res.losses) == len(res.smoothed) == 20
    assert res.lrs[0] == pytest.approx(1e-5) and res.lrs[-1] == pytest.approx(1e-1)
    ratios = np.diff(np.log(res.lrs))
    assert np.allclose(ratios, ratios[0])
    assert res.smoothed == pytest.approx(ema_smooth(res.losses, 0.8))
    assert res.smoothed[0] == pytest.approx(res.losses[0])  # bias correction: no pull towards 0
    assert not res.stopped_early and res.diverged_lr is None
    assert res.lrs[0] / 10 <= res.suggestion <= res.lrs[-1] and res.suggestion_method
    assert "suggested lr" in str(res)


def test_range_test_stops_when_the_loss_blows_up(data):
    res = lr_range_test(make_mlp(), data[0], optimizer="sgd", start_lr=1e-3, end_lr=1e3, num_steps=60)
    assert res.stopped_early
    assert len(res.lrs) < 60
    assert res.diverged_lr == res.lrs[-1]
    last = res.smoothed[-1]
    assert not math.isfinite(last) or last > 4.0 * min(res.smoothed)


def test_suggestion_is_robust_to_an_early_spike():
    """An early spike makes the smoothed loss fall steeply on its way back down.

    A naive pick (steepest slope of the smoothed loss before the minimum) lands right
    after the spike, decades below where the loss really falls. A spike only raises the
    loss, so it cannot move the minimum, and a tenth of the minimum's LR stays in the
    real descent.
    """
    n = 100
    lrs = [1e-7 * 1e6 ** (i / (n - 1)) for i in range(n)]
    t = np.linspace(0, 1, n)
    loss = 1.0 - 0.8 / (1 + np.exp(-(t - 0.6) / 0.04)) + np.where(t > 0.8, np.exp((t - 0.8) * 25) - 1, 0)
    loss[12] = 30.0  # one bad batch early in the sweep
    smoothed = ema_smooth(loss.tolist(), 0.98)
    i_min = int(np.argmin(smoothed))
    true_descent = (lrs[int(0.45 * n)], lrs[int(0.75 * n)])  # where the clean curve falls

    slope = np.gradient(np.array(smoothed), np.log(lrs))
    naive = lrs[int(np.argmin(slope[: i_min + 1]))]
    assert naive < 1e-6 < true_descent[0]  # fooled by the spike's decay

    ours, method = suggest_lr(lrs, smoothed)
    assert true_descent[0] <= ours <= true_descent[1]
    assert method == "LR at the smoothed loss's minimum / 10"
    # and without the spike both agree on the descent
    clean = ema_smooth((loss - np.where(np.arange(n) == 12, 29.0 + loss[11] - 1.0, 0)).tolist(), 0.98)
    assert true_descent[0] <= suggest_lr(lrs, clean)[0] <= true_descent[1]


def test_a_flat_noisy_sweep_is_judged_by_its_rise_not_its_luckiest_batch():
    """A short sweep that sees no learning: batch noise around 1.0, then a blow-up."""
    n = 20
    lrs = [1e-7 * 1e6 ** (i / (n - 1)) for i in range(n)]
    rng = np.random.default_rng(0)
    losses = (1.0 + 0.3 * rng.standard_normal(n)).clip(0.3).tolist()
    losses[-3:] = [3.0, 8.0, 30.0]
    smoothed = ema_smooth(losses, 0.8)
    i_min = int(np.argmin(smoothed))
    assert i_min < n - 4  # the minimum is some lucky batch in the flat part
    lr, method = suggest_lr(lrs, smoothed, losses, 0.8)
    assert "began to rise" in method
    assert lr == pytest.approx(lrs[n - 3] / 10)
    result = LRRangeResult(lrs, losses, smoothed, True, lr, method, lrs[i_min], lrs[n - 3], lrs[-1])
    assert range_test_findings(result, lr=lrs[n - 5]) == []  # far past the minimum, still quiet


def test_suggestion_when_the_loss_never_fell():
    lrs = [1e-4, 1e-3, 1e-2, 1e-1]
    assert suggest_lr(lrs, [1.0, 0.5, 3.0, 9.0])[0] == pytest.approx(1e-4)
    lr, method = suggest_lr(lrs, [1.0, 2.0, 3.0, math.inf])  # only ever rose: a tenth of where it rose
    assert lr == pytest.approx(1e-4) and "began to rise" in method
    lr, method = suggest_lr(lrs, [1.0, 1.01, 1.02, 1.03])  # flat, never clearly rose
    assert lr == pytest.approx(1e-5) and "never fell" in method


def test_training_after_a_range_test_equals_training_without_it(data):
    train_ds, val_ds = data
    probed, fresh = _dropout_mlp(), _dropout_mlp()
    torch.manual_seed(123)
    lr_range_test(probed, train_ds, num_steps=15, end_lr=10.0)  # runs into divergence
    after_probe = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after_probe, torch.rand(3))  # the RNG is where it was
    assert _same_state(probed, fresh)
    assert all(p.grad is None for p in probed.parameters())
    run_a = train(CFG, probed, train_ds, val_ds, sink=None)
    run_b = train(CFG, fresh, train_ds, val_ds, sink=None)
    assert _timeless(run_a.history) == _timeless(run_b.history)
    assert _same_state(run_a.model, run_b.model)


def test_range_test_restores_a_given_optimizer_and_mode(data):
    model = make_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = data[0].tensors
    for _ in range(3):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    model.eval()
    before_opt = copy.deepcopy(opt.state_dict())
    before_model = copy.deepcopy(model)
    grads = [p.grad.clone() for p in model.parameters()]
    res = lr_range_test(model, data[0], optimizer=opt, num_steps=10)
    assert len(res.lrs) == 10
    after = opt.state_dict()
    assert after["param_groups"] == before_opt["param_groups"]
    for k, st in before_opt["state"].items():
        for name, v in st.items():
            assert torch.equal(after["state"][k][name], v)
    assert _same_state(model, before_model)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert not model.training


def test_range_test_plot_returns_axes(data):
    import matplotlib.pyplot as plt

    res = lr_range_test(make_mlp(), data[0], num_steps=12)
    ax = res.plot()
    assert ax.get_xscale() == "log"
    fig, given = plt.subplots()
    assert res.plot(ax=given) is given
    plt.close("all")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start_lr": 0.0}, r"start_lr must be a positive number, got 0.0"),
        ({"start_lr": 1e-2, "end_lr": 1e-3}, r"end_lr must be > start_lr"),
        ({"num_steps": 1}, r"num_steps must be >= 2, got 1"),
        ({"smoothing": 1.0}, r"smoothing must be in \[0, 1\), got 1.0"),
        ({"diverge_factor": 1.0}, r"diverge_factor must be > 1, got 1.0"),
        ({"batch_size": 0}, r"batch_size must be >= 1, got 0"),
        ({"optimizer": "lion"}, r"optimizer must be 'adam', 'sgd' or a torch.optim.Optimizer, got 'lion'"),
    ],
)
def test_range_test_rejects_bad_arguments(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lr_range_test(make_mlp(), data[0], **kwargs)


def test_probes_reject_bad_data_and_models(data):
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module, got str"):
        lr_range_test("net", data[0])
    with pytest.raises(TypeError, match=r"data must be a torch Dataset, a DataLoader or a tuple"):
        gradient_noise_scale(make_mlp(), [1, 2, 3])


# -- gradient noise scale ------------------------------------------------------------------
def test_noise_scale_matches_the_analytic_value_on_linear_regression():
    """y = w*.x + eps, x ~ N(0, I_d), eps ~ N(0, s^2); per-example loss (w.x - y)^2 (MSELoss).

    With r = w - w*, the per-example gradient is g = 2 (r.x - eps) x, so
    G = E g = 2 r, and (Isserlis) E g g^T = 4 ((|r|^2 + s^2) I + 2 r r^T), giving
    tr(Sigma) = 4 ((d + 1) |r|^2 + d s^2) and B_simple = tr(Sigma) / |G|^2.
    """
    d, s = 10, 1.0
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, d, generator=g)
    w_star = torch.randn(d, 1, generator=g)
    y = x @ w_star + s * torch.randn(20000, 1, generator=g)
    model = nn.Linear(d, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_((w_star + 0.3 * torch.randn(d, 1, generator=g)).T)
    r = (model.weight.detach().T - w_star).squeeze(1)
    r2 = float(r @ r)
    true_g2 = 4 * r2
    true_trace = 4 * ((d + 1) * r2 + d * s**2)
    true_b = true_trace / true_g2  # about 30

    res = gradient_noise_scale(model, (x, y), small_batch=8, big_batch=64, n_small=8, n_pairs=150, seed=0)
    assert isinstance(res, NoiseScaleResult)
    assert res.grad_sq == pytest.approx(true_g2, rel=0.15)
    assert res.trace == pytest.approx(true_trace, rel=0.15)
    assert res.b_simple == pytest.approx(true_b, rel=0.15)
    assert res.reliable
    assert res.recommended_batch_size == 32
    assert len(res.grad_sq_pairs) == len(res.trace_pairs) == 150
    text = res.describe(batch_size=8)
    assert "B_simple is about" in text and "batch of 8 is below it" in text and "about 32" in text


def test_noise_scale_restores_the_model_and_rng(data):
    model = _dropout_mlp()
    ref = copy.deepcopy(model)
    model.eval()
    torch.manual_seed(5)
    gradient_noise_scale(model, data[0], small_batch=4, big_batch=16, n_pairs=2)
    first = torch.rand(2)
    torch.manual_seed(5)
    assert torch.equal(first, torch.rand(2))
    assert _same_state(model, ref) and not model.training
    assert all(p.grad is None for p in model.parameters())


def test_noise_scale_when_the_noise_swamps_the_signal():
    # at the exact least-squares solution the mean gradient is 0: |G|^2 is noise around 0
    x, y = make_regression(256, noise=1.0)
    model = nn.Linear(4, 1)
    sol = torch.linalg.lstsq(torch.cat([x, torch.ones(256, 1)], 1), y).solution
    with torch.no_grad():
        model.weight.copy_(sol[:4].T)
        model.bias.copy_(sol[4])
    # seed 1: |G|^2 comes out positive but within two standard errors of zero: a rough number
    res = gradient_noise_scale(model, (x, y), small_batch=4, big_batch=16, n_small=4, n_pairs=6, seed=1)
    assert not res.reliable and 0 < res.grad_sq < 2 * res.grad_sq_stderr
    assert 0 < res.b_simple_low < res.b_simple < math.inf
    text = res.describe(4)
    assert "take it as a rough figure" in text and f"(at least about {res.b_simple_low:.3g})" in text
    # seed 2: |G|^2 comes out negative: no number, only the lower bound and the capped recommendation
    res = gradient_noise_scale(model, (x, y), small_batch=4, big_batch=16, n_small=4, n_pairs=6, seed=2)
    assert not res.reliable and res.grad_sq < 0 and res.b_simple == math.inf
    assert res.b_simple_low > 0 and res.recommended_batch_size == res.max_batch == 16
    text = res.describe(4)
    assert text.startswith("The gradient noise swamps the mean gradient") and "the cap that keeps 16 steps" in text


def test_noise_scale_pairs_are_the_paper_formulas_bit_for_bit(data):
    """Each pair's estimates equal the formulas on float64 copies of the flat gradients, recomputed here."""
    model = make_mlp(hidden=32)
    res = gradient_noise_scale(model, data[0], small_batch=4, big_batch=32, n_pairs=3, n_small=3, seed=7)
    params, (x_all, y_all) = list(model.parameters()), data[0].tensors
    gen, loss_fn = torch.Generator().manual_seed(7), nn.MSELoss()

    def sq_norm(x, y):
        g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss_fn(model(x), y), params)]).double()
        return g.dot(g)

    grad_sq, trace = [], []
    for _ in range(3):
        idx = torch.randperm(len(x_all), generator=gen)[:32]
        x, y = x_all[idx], y_all[idx]
        s_big = sq_norm(x, y)
        s_small = 0.0
        for j in range(3):
            s_small = s_small + sq_norm(x[4 * j : 4 * j + 4], y[4 * j : 4 * j + 4])
        s_small = s_small / 3
        grad_sq.append(float((32.0 * s_big - 4.0 * s_small) / 28.0))
        trace.append(float((s_small - s_big) / (1 / 4.0 - 1 / 32.0)))
    assert res.grad_sq_pairs == grad_sq and res.trace_pairs == trace


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"small_batch": 0}, r"small_batch must be >= 1, got 0"),
        ({"small_batch": 8, "big_batch": 24, "n_small": 4}, r"big_batch must hold n_small x small_batch examples"),
        ({"small_batch": 8, "big_batch": 8, "n_small": 1}, r"and be larger than small_batch, got big_batch=8"),
        ({"n_pairs": 0}, r"n_pairs must be >= 1, got 0"),
        ({"n_small": 0}, r"n_small must be >= 1, got 0"),
        ({"big_batch": 256}, r"big_batch must be <= the number of examples \(128\), got 256"),
    ],
)
def test_noise_scale_rejects_bad_arguments(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradient_noise_scale(make_mlp(), data[0], **kwargs)


def test_recommended_batch_size_is_a_clamped_power_of_two():
    def res(b):
        return NoiseScaleResult(b, 1.0, b, 0.1, 8, 64, 4, max_batch=512)

    assert res(21.0).recommended_batch_size == 16
    assert res(24.0).recommended_batch_size == 32
    assert res(0.3).recommended_batch_size == 1
    assert res(1e6).recommended_batch_size == 512
    assert res(math.inf).recommended_batch_size == 512


# -- sharpness -----------------------------------------------------------------------------
def _exact_top(model: nn.Module, x, y, scale: torch.Tensor | None = None) -> float:
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_of(v):
        ps, i = {}, 0
        for n, s in zip(names, shapes):
            k = math.prod(s)
            ps[n] = v[i : i + k].reshape(s)
            i += k
        return nn.functional.mse_loss(functional_call(model, ps, (x,)), y)

    h = torch.autograd.functional.hessian(loss_of, flat)
    if scale is not None:
        h = scale[:, None] * h * scale[None, :]
    return float(torch.linalg.eigvalsh(h)[-1])


def _tiny_net():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x = torch.randn(64, 3, dtype=torch.float64)
    y = torch.sin(x.sum(1, keepdim=True))
    return model, x, y


def test_sharpness_matches_the_exact_top_eigenvalue():
    model, x, y = _tiny_net()
    exact = _exact_top(model, x, y)
    res = estimate_sharpness(model, (x, y))  # the default 12 iterations
    assert isinstance(res, SharpnessResult)
    assert res.sharpness == pytest.approx(exact, rel=0.01)
    assert res.threshold is None and res.ratio is None and res.optimizer_kind == "none"


def test_preconditioned_sharpness_matches_the_exact_value_for_adam():
    model, x, y = _tiny_net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    v_hat = [opt.state[p]["exp_avg_sq"] / (1 - 0.999 ** float(opt.state[p]["step"])) for p in model.parameters()]
    p_inv_sqrt = torch.cat([(v.sqrt() + 1e-8).rsqrt().reshape(-1) for v in v_hat])
    exact_pre = _exact_top(model, x, y, p_inv_sqrt)

    res = estimate_sharpness(model, (x, y), optimizer=opt)
    assert res.optimizer_kind == "adam"
    assert res.preconditioned == pytest.approx(exact_pre, rel=0.01)
    assert res.sharpness == pytest.approx(_exact_top(model, x, y), rel=0.01)
    # the limit for Adam's preconditioned sharpness: (2 + 2 beta1) / ((1 - beta1) lr) = 38 / lr at beta1 = 0.9
    assert res.threshold == pytest.approx(38 / 1e-2)
    assert res.threshold_formula == "(2 + 2*beta1) / ((1 - beta1) * lr) = 38 / lr with beta1=0.9, lr=0.01"
    assert res.ratio == pytest.approx(res.preconditioned / 3800)
    assert res.relevant == res.preconditioned


def test_stability_thresholds():
    p = [nn.Parameter(torch.zeros(2))]
    assert stability_threshold(torch.optim.SGD(p, lr=0.1)) == (pytest.approx(20.0), "2 / lr with lr=0.1")
    limit, formula = stability_threshold(torch.optim.SGD(p, lr=0.1, momentum=0.9))
    assert limit == pytest.approx(38.0) and formula == "(2 + 2*beta) / lr = 3.8 / lr with momentum beta=0.9, lr=0.1"
    limit, formula = stability_threshold(torch.optim.SGD(p, lr=0.1, momentum=0.5, nesterov=True))
    assert limit == pytest.approx(15.0) and "= 1.5 / lr with Nesterov beta=0.5" in formula
    assert stability_threshold(torch.optim.Adam(p, lr=1e-3))[0] == pytest.approx(38_000.0)
    limit, formula = stability_threshold(torch.optim.Adam(p, lr=1e-3, betas=(0.5, 0.999)))
    assert limit == pytest.approx(6_000.0) and "= 6 / lr with beta1=0.5, lr=0.001" in formula
    with pytest.raises(TypeError, match=r"optimizer must be torch.optim.SGD, Adam or AdamW, got RMSprop"):
        stability_threshold(torch.optim.RMSprop(p, lr=1e-3))


def test_sharpness_with_sgd_compares_with_two_over_lr():
    model, x, y = _tiny_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.4)
    res = estimate_sharpness(model, (x, y), optimizer=opt)
    assert res.preconditioned is None and res.threshold == pytest.approx(5.0)
    assert res.ratio == pytest.approx(res.sharpness / 5.0)


class _Quadratic(nn.Module):
    """f(w) = 0.5 w^T A w: a model whose output is its own loss."""

    def __init__(self, eigs):
        super().__init__()
        self.register_buffer("a", torch.diag(torch.tensor(eigs, dtype=torch.float64)))
        self.w = nn.Parameter(torch.ones(len(eigs), dtype=torch.float64))

    def forward(self, x):
        return 0.5 * self.w @ self.a @ self.w


def test_sharpness_finds_the_top_eigenvalue_when_a_negative_one_is_larger():
    res = estimate_sharpness(_Quadratic([-5.0, 2.0, 1.0]), (torch.zeros(1), torch.zeros(1)), loss_fn=lambda out, y: out, iters=60)
    assert res.sharpness == pytest.approx(2.0, rel=1e-3)


def test_sharpness_is_plain_power_iteration_bit_for_bit_and_stops_once_converged():
    model, x, y = _tiny_net()
    params = list(model.parameters())
    grads = torch.autograd.grad(nn.functional.mse_loss(model(x), y), params, create_graph=True)
    v = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    v = v / v.norm()
    plain = []  # the Rayleigh quotient of each iteration, with fresh tensors throughout
    for _ in range(40):
        vs, i = [], 0
        for p in params:
            vs.append(v[i : i + p.numel()].view_as(p))
            i += p.numel()
        hv = torch.cat([t.reshape(-1) for t in torch.autograd.grad(grads, params, vs, retain_graph=True)])
        plain.append(float(hv.dot(v)))
        v = hv / hv.norm()

    full = estimate_sharpness(model, (x, y), seed=4, iters=40, tol=0)
    assert full.trace == plain and full.sharpness == max(plain) and full.iters == 40
    early = estimate_sharpness(model, (x, y), seed=4, iters=40)  # tol 1e-5: stops once two quotients agree to it
    k = len(early.trace)
    assert 2 <= k < 40 and early.trace == plain[:k]
    assert abs(plain[k - 1] - plain[k - 2]) < 1e-5 * abs(plain[k - 1])
    assert all(abs(b - a) >= 1e-5 * abs(b) for a, b in zip(plain[: k - 2], plain[1 : k - 1]))
    assert early.sharpness == pytest.approx(full.sharpness, rel=40 * 1e-5)  # the documented bound
    for bad in (-1e-3, 1.0, math.nan, "1e-5", True):
        with pytest.raises(ValueError, match=r"tol must be a number in \[0, 1\), got"):
            estimate_sharpness(model, (x, y), tol=bad)


def test_sharpness_restores_batchnorm_buffers_grads_and_rng():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 1))
    x, y = make_regression(32)
    ref = copy.deepcopy(model)
    torch.manual_seed(9)
    res = estimate_sharpness(model, (x, y), iters=5)
    after = torch.rand(2)
    torch.manual_seed(9)
    assert torch.equal(after, torch.rand(2))
    assert _same_state(model, ref)  # running mean/var and num_batches_tracked too
    assert all(p.grad is None for p in model.parameters())
    assert res.sharpness > 0


# -- per-layer statistics ------------------------------------------------------------------
def test_layer_stats_rows_and_pre_clip_norms(data):
    train_ds, val_ds = data
    cfg = CFG.replace(batch_size=128, grad_clip=0.05, epochs=3)  # one full-batch step per epoch, always clipped
    stats = LayerStats(grad_every=1)
    run = train(cfg, make_mlp(), train_ds, val_ds, callbacks=[stats], sink=None)
    rows = run.history.meta["layer_stats"]
    json.dumps(rows)  # JSON-safe
    assert len(rows) == 3 * 4
    assert {r["layer"] for r in rows} == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for step in run.history.steps:
        assert step["clipped"]
        mine = [r for r in rows if r["epoch"] == step["epoch"]]
        total = math.sqrt(sum(r["grad_norm"] ** 2 for r in mine))
        assert total == pytest.approx(step["grad_norm"], rel=1e-4)  # per-layer norms undo the clip
        assert sum(r["grad_share"] for r in mine) == pytest.approx(1.0, rel=1e-5)
    w0 = dict(run.model.named_parameters())["0.weight"]
    last = [r for r in rows if r["epoch"] == 2 and r["layer"] == "0.weight"][0]
    assert last["weight_norm"] == pytest.approx(float(w0.detach().norm()), rel=1e-5)
    assert last["epoch_update_ratio"] > 0


def test_layer_stats_sample_gradients_every_few_steps(data):
    train_ds, val_ds = data
    cfg = CFG.replace(batch_size=16, grad_clip=None, epochs=1)  # 8 steps
    norms = []

    class Norms(Callback):
        def on_step_end(self, trainer, row):
            norms.append(float(dict(trainer.model.named_parameters())["0.weight"].grad.norm()))

    run = train(cfg, make_mlp(), train_ds, val_ds, callbacks=[Norms(), LayerStats(grad_every=3)], sink=None)
    row = next(r for r in run.history.meta["layer_stats"] if r["layer"] == "0.weight")
    sampled = [norms[i] for i in (0, 3, 6)]
    assert row["steps"] == 8
    assert row["grad_norm"] == pytest.approx(sum(sampled) / 3, rel=1e-5)
    assert row["grad_norm_max"] == pytest.approx(max(sampled), rel=1e-5)


def test_layer_stats_update_ratio_and_modules(data):
    train_ds, val_ds = data
    cfg = CFG.replace(batch_size=64, grad_clip=None, epochs=1)  # two steps per epoch
    snaps = []

    class Snap(Callback):  # keeps the weights around each step
        def on_train_begin(self, trainer):
            snaps.append([p.detach().clone() for p in trainer.params])

        def on_step_end(self, trainer, row):
            snaps.append([p.detach().clone() for p in trainer.params])

    stats = LayerStats(by="module", update_every=1)
    run = train(cfg, make_mlp(), train_ds, val_ds, callbacks=[Snap(), stats], sink=None)
    df = layer_stats_dataframe(run.history)
    assert list(df["layer"]) == ["0", "2"]
    w1, w2 = snaps[1], snaps[2]  # after step 0 and after step 1
    d = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(w2[:2], w1[:2])))
    w = torch.sqrt(sum((b**2).sum() for b in w1[:2]))
    assert df.loc[0, "update_ratio"] == pytest.approx(float(d / w), rel=1e-4)
    e = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(snaps[2][:2], snaps[0][:2])))
    w0 = torch.sqrt(sum((b**2).sum() for b in snaps[0][:2]))
    assert df.loc[0, "epoch_update_ratio"] == pytest.approx(float(e / w0), rel=1e-4)


def test_layer_stats_do_not_change_training_and_reach_the_saved_history(data, tmp_path):
    train_ds, val_ds = data
    plain = train(CFG, make_mlp(), train_ds, val_ds, sink=None)
    with_stats = train(CFG, make_mlp(), train_ds, val_ds, callbacks=[LayerStats()], sink=None, out=tmp_path / "run")
    assert _timeless(plain.history) == _timeless(with_stats.history)
    saved = History.load(tmp_path / "run" / "history.json")
    df = layer_stats_dataframe(saved)
    assert sorted(df["epoch"].unique()) == [0, 1]
    assert list(df.columns[:5]) == ["epoch", "layer", "steps", "grad_norm", "grad_norm_max"]
    assert layer_stats_dataframe(History()).empty


def test_layer_stats_record_a_stopped_partial_epoch(data, tmp_path):
    from nbtrain import StopAfterSteps

    train_ds, val_ds = data
    # the stop is asked before LayerStats' step hook: the partial epoch is closed at that step,
    # so it reaches the run folder too
    run = train(CFG, make_mlp(), train_ds, val_ds, callbacks=[StopAfterSteps(5), LayerStats()], sink=None,
                out=tmp_path / "a")
    assert run.status == "stopped"
    df = layer_stats_dataframe(run.history)
    assert set(df["epoch"]) == {0} and set(df["steps"]) == {5} and len(df) == 4
    assert layer_stats_dataframe(History.load(tmp_path / "a" / "history.json")).equals(df)
    # asked after it: on_train_end closes the partial epoch (in the History in memory)
    run = train(CFG, make_mlp(), train_ds, val_ds, callbacks=[LayerStats(), StopAfterSteps(5)], sink=None)
    assert run.status == "stopped"
    assert layer_stats_dataframe(run.history).equals(df)


def test_layer_stats_rows_are_in_the_history_at_every_save(data, tmp_path):
    """Each epoch's rows are written at its last step, before the trainer saves (history and checkpoint)."""
    train_ds, val_ds = data
    seen = []

    class Recording(Trainer):
        def save(self):
            seen.append((self.epoch, sorted({r["epoch"] for r in self.history.meta["layer_stats"]})))
            super().save()

    Recording(CFG.replace(epochs=3), make_mlp(), train_ds, val_ds, out=tmp_path / "run",
              callbacks=[LayerStats()], sink=None).fit()
    assert seen == [(1, [0]), (2, [0, 1]), (3, [0, 1, 2])]


def test_layer_stats_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"by must be 'parameter' or 'module', got 'layer'"):
        LayerStats(by="layer")
    with pytest.raises(ValueError, match=r"update_every must be >= 1, got 0"):
        LayerStats(update_every=0)
    with pytest.raises(ValueError, match=r"grad_every must be an int, got 2.5"):
        LayerStats(grad_every=2.5)


# -- findings ------------------------------------------------------------------------------
def _range_result(stopped: bool = True) -> LRRangeResult:
    lrs = [1e-6, 1e-5, 1e-4, 1e-3, 5e-3, 1e-2]
    return LRRangeResult(
        lrs, [1, 0.9, 0.5, 0.4, 1.0, 9], [1, 0.9, 0.6, 0.5, 0.8, 3], stopped, 1e-4, "test", 1e-3, 5e-3,
        1e-2 if stopped else None,
    )


def test_range_test_finding_fires_past_the_rise_and_stays_quiet_below():
    assert range_test_findings(_range_result(), lr=1e-4) == []
    assert range_test_findings(_range_result(), lr=2e-3) == []  # past the minimum, before the rise
    (f,) = range_test_findings(_range_result(), lr=6e-3)
    assert f.code == "LR_ABOVE_STABLE_RANGE" and f.severity == "warning"
    assert f.suggestion == "Lower the learning rate to about 0.0001 (the sweep's suggestion)."
    assert "rose clearly above its minimum (0.005)" in f.problem and f.evidence["rise_lr"] == 5e-3
    (f,) = range_test_findings(_range_result(), lr=0.05)
    assert f.severity == "critical" and "diverged" in f.problem and f.evidence["diverged_lr"] == 1e-2
    for name in ("code", "severity", "title", "problem", "evidence", "explanation", "suggestion", "monitor"):
        assert getattr(f, name)


def _sharp(value: float, threshold: float) -> SharpnessResult:
    return SharpnessResult(value, None, threshold, "2 / lr", 2 / threshold, "sgd", 20)


def test_sharpness_finding_fires_at_the_edge_and_stays_quiet_below():
    assert sharpness_findings(_sharp(10.0, 20.0)) == []
    (f,) = sharpness_findings(_sharp(19.0, 20.0))
    assert f.code == "LR_ABOVE_STABLE_RANGE" and "95%" in f.problem
    (f,) = sharpness_findings(_sharp(30.0, 20.0))
    assert f.severity == "critical"
    assert sharpness_findings(SharpnessResult(5.0, None, None, "", None, "none", 20)) == []


def test_sharpness_result_text_states_the_share_of_the_limit():
    assert str(_sharp(19.0, 20.0)) == "sharpness 19 vs stability limit 20 (2 / lr): 95% of the limit."
    assert str(_sharp(0.078, 20.0)).endswith(": 0.39% of the limit.")  # small shares keep two digits, not 0%
    assert str(SharpnessResult(5.0, None, None, "", None, "none", 20)).startswith("sharpness (top Hessian eigenvalue) 5;")


def test_noise_scale_finding_fires_below_b_simple_and_stays_quiet_above():
    res = NoiseScaleResult(200.0, 1.0, 200.0, 0.1, 8, 64, 8, max_batch=1024)
    (f,) = noise_scale_findings(res, batch_size=8)
    assert f.code == "BATCH_BELOW_NOISE_SCALE" and "256" in f.suggestion and f.severity == "warning"
    assert noise_scale_findings(res, batch_size=256) == []
    # |G|^2 within noise of zero: still a warning when even the lower bound is above the batch
    rough = NoiseScaleResult(2000.0, 1.0, 2000.0, 1.0, 8, 256, 4, max_batch=256)
    assert not rough.reliable and rough.b_simple_low == pytest.approx(2000 / 3)
    (f,) = noise_scale_findings(rough, batch_size=8)
    assert f.severity == "warning" and "lower bound" in f.problem and "256" in f.suggestion
    (f,) = noise_scale_findings(rough, batch_size=1000)
    assert f.severity == "info"
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        noise_scale_findings(res, batch_size=0)


def _layer_rows(shares):
    return [
        {"epoch": 0, "layer": f"l{i}", "grad_norm": s, "grad_share": s, "weight_norm": 1.0, "update_ratio": 1e-3}
        for i, s in enumerate(shares)
    ]


def test_layer_finding_fires_when_one_layer_dominates_and_stays_quiet_otherwise():
    (f,) = layer_findings(_layer_rows([0.8, 0.1, 0.1]))
    assert f.code == "LAYER_DOMINATES_GRADIENT" and "l0" in f.title and "80%" in f.problem
    assert layer_findings(_layer_rows([0.4, 0.35, 0.25])) == []
    assert layer_findings(_layer_rows([1.0])) == []  # a single layer always holds everything
    assert layer_findings(History(meta={"layer_stats": _layer_rows([0.9, 0.1])}))[0].code == "LAYER_DOMINATES_GRADIENT"
    assert layer_findings(History()) == []


def test_probe_findings_collects_all_and_needs_the_settings():
    found = probe_findings(
        lr=6e-3,
        batch_size=8,
        range_test=_range_result(),
        noise_scale=NoiseScaleResult(200.0, 1.0, 200.0, 0.1, 8, 64, 8),
        sharpness_result=_sharp(19.0, 20.0),
        history=History(meta={"layer_stats": _layer_rows([0.9, 0.1])}),
    )
    assert [f.code for f in found] == [
        "LR_ABOVE_STABLE_RANGE",
        "LR_ABOVE_STABLE_RANGE",
        "BATCH_BELOW_NOISE_SCALE",
        "LAYER_DOMINATES_GRADIENT",
    ]
    assert probe_findings(lr=1e-5, batch_size=512, range_test=_range_result(),
                          noise_scale=NoiseScaleResult(200.0, 1.0, 200.0, 0.1, 8, 64, 8)) == []
    with pytest.raises(ValueError, match=r"lr is needed to judge an LR range test, got None"):
        probe_findings(range_test=_range_result())
    with pytest.raises(ValueError, match=r"batch_size is needed to judge a noise scale, got None"):
        probe_findings(noise_scale=NoiseScaleResult(200.0, 1.0, 200.0, 0.1, 8, 64, 8))


def test_sharpness_includes_the_optimizers_l2_term():
    model, x, y = _tiny_net()
    exact = _exact_top(model, x, y)
    res = estimate_sharpness(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.5))
    assert res.sharpness == pytest.approx(exact + 0.5, rel=0.01)  # the L2 penalty adds wd * I


# -- devices -------------------------------------------------------------------------------
def test_batches_go_to_the_given_device_non_blocking_only_onto_cuda():
    from nbtrain.probes._common import Examples, as_batch

    x, y = make_regression(8)
    meta = torch.device("meta")
    assert as_batch((x, y), torch.device("cpu"))[0] is x  # already there: no copy
    assert {t.device for t in as_batch((x, y), meta)} == {meta} and x.device.type == "cpu"
    assert {t.device for t in as_batch({"x": x, "y": y}, meta)} == {meta}
    assert {t.device for t in Examples(TensorDataset(x, y)).take(torch.arange(3), meta)} == {meta}

    calls = []

    class Recorded(torch.Tensor):  # records the copy a probe asks for (no GPU needed)
        def to(self, *args, **kwargs):
            calls.append((str(args[0]), kwargs.get("non_blocking", False)))
            return self

    rx, ry = (torch.Tensor._make_subclass(Recorded, t) for t in (x, y))
    for device, non_blocking in (("cuda:1", True), ("mps", False), ("cpu", False)):
        calls.clear()
        as_batch((rx, ry), torch.device(device))
        Examples((rx, ry)).take(torch.arange(3), torch.device(device))
        assert calls == [(device, non_blocking)] * 4


@pytest.mark.parametrize("probe", ["lr_range_test", "gradient_noise_scale", "estimate_sharpness"])
def test_probes_move_the_data_to_the_model_not_the_model_to_the_data(probe):
    # No GPU in CI: a model on the meta device stands for one on an accelerator. The forward
    # passes must see inputs on the model's device; the probe then fails at its first host
    # sync (meta tensors hold no numbers), and the model must still be where it was.
    x, y = make_regression(128)
    model = make_mlp().to("meta")
    seen = []
    model.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].device))
    args = {"lr_range_test": (TensorDataset(x, y),), "gradient_noise_scale": (TensorDataset(x, y), None, 8, 64),
            "estimate_sharpness": ((x[:16], y[:16]),)}[probe]
    with pytest.raises((RuntimeError, NotImplementedError), match="meta"):
        getattr(nbtrain, probe)(model, *args)
    assert seen and set(seen) == {torch.device("meta")}
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert x.device.type == "cpu"


def test_probes_on_a_model_placed_on_the_cpu_explicitly(data):
    train_ds, _ = data
    implicit, explicit = _dropout_mlp(), _dropout_mlp().to("cpu")
    a, b = lr_range_test(implicit, train_ds, num_steps=6), lr_range_test(explicit, train_ds, num_steps=6)
    assert (a.losses, a.smoothed) == (b.losses, b.smoothed)
    x, y = train_ds.tensors
    assert estimate_sharpness(implicit, (x[:32], y[:32])).trace == estimate_sharpness(explicit, (x[:32], y[:32])).trace


def test_restoring_forks_and_seeds_only_the_models_devices(monkeypatch):
    from nbtrain.probes import _common

    model = make_mlp()
    assert _common._accelerators(model) == {}
    assert _common._accelerators(make_mlp().to("meta")) == {}  # meta holds no RNG
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda s: seeded.append(("seed", s)))
    monkeypatch.setattr(torch.cuda, "device", lambda i: _Noop(lambda: seeded.append(("select", i))))
    before = torch.get_rng_state()
    _common._seed(7, {"cuda": [1, 3]})  # each of the model's GPUs, selected in turn: no other GPU's RNG
    assert seeded == [("select", 1), ("seed", 7), ("select", 3), ("seed", 7)]
    assert torch.equal(torch.get_rng_state(), torch.Generator().manual_seed(7).get_state())
    torch.set_rng_state(before)


class _Noop:
    def __init__(self, on_enter):
        self.on_enter = on_enter

    def __enter__(self):
        self.on_enter()

    def __exit__(self, *exc):
        return False


def test_layer_stats_leave_out_steps_the_loss_scaler_skipped():
    from types import SimpleNamespace

    model = make_mlp()
    params = list(model.parameters())
    trainer = SimpleNamespace(model=model, params=params, history=History(), steps_per_epoch=4,
                              stop_requested=False)
    stats = LayerStats(grad_every=1, update_every=1)
    stats.on_train_begin(trainer)
    for step, skipped in enumerate([False, True, False, True]):
        for p in params:
            p.grad = torch.full_like(p, math.inf if skipped else 1.0)
        if not skipped:
            with torch.no_grad():
                for p in params:
                    p.mul_(1.5)
        stats.on_step_end(trainer, {"epoch": 0, "step": step, "skipped": skipped, "clip_factor": 1.0})
    rows = trainer.history.meta["layer_stats"]
    assert len(rows) == len(params) and all(r["steps"] == 4 for r in rows)
    for r, p in zip(rows, params):
        assert r["grad_norm"] == pytest.approx(math.sqrt(p.numel()))  # the two taken steps only
        assert r["grad_norm_max"] == pytest.approx(math.sqrt(p.numel()))
        assert r["update_ratio"] == pytest.approx(0.5)  # measured on taken steps, never a skipped one's 0
