"""Sharpness: the top Hessian eigenvalue, and where it stands against the step size's stability limit.

Definitions
-----------
sharpness
    The largest eigenvalue of the Hessian of the loss on one fixed batch (plus the
    optimizer's L2 term ``weight_decay * I`` for Adam and SGD; AdamW decays outside the
    gradient). ``estimate_sharpness`` finds it by power iteration on Hessian-vector products.
preconditioned sharpness
    With Adam: the largest eigenvalue of ``P^-1/2 H P^-1/2``, ``P = diag(sqrt(v_hat) + eps)``
    from the optimizer's state (Cohen et al. 2022).
stability limit
    ``stability_threshold``: the sharpness above which a step of the optimizer's size
    overshoots on a quadratic: 2 / lr for gradient descent, 38 / lr for Adam's
    preconditioned sharpness at beta1 = 0.9.

Cost and accuracy
-----------------
One Hessian-vector product costs about two training steps of the reference experiment
(batch 8, fused Adam). On the reference model after one ROUND1 epoch, over seeds 0-29,
``estimate_sharpness``'s default (at most 12 products, ``tol`` 1e-5) stopped after 9.3 on
average on 16 examples and 10.5 on 64, and its values stayed within 5e-6 (relative) of
those of all 12 (median error against 100 products 8e-7 and 3e-6, against 4e-7 and 6e-7
with all 12). On 16 examples it took 3.5-4% of an epoch (``benchmarks/bench_probes.py``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..training.devices import model_device, to_device
from ._common import LossFn, as_batch, check_int, check_model, default_loss, flatten, restoring

_ADAMS = (torch.optim.Adam, torch.optim.AdamW)


def stability_threshold(optimizer: torch.optim.Optimizer) -> tuple[float, str]:
    """``(threshold, formula)``: where the relevant sharpness makes the update unstable.

    Gradient descent on a quadratic of curvature lambda is stable while lambda < 2 / lr;
    heavy-ball momentum beta moves that to (2 + 2 beta) / lr, Nesterov to
    (2 + 2 beta) / ((1 + 2 beta) lr); Adam's preconditioned sharpness (with its beta1
    momentum and frozen preconditioner) to (2 + 2 beta1) / ((1 - beta1) lr), 38 / lr
    at beta1 = 0.9 (Cohen et al. 2021, 2022). The formula text states the rule, its
    value as ``c / lr`` and the settings it was evaluated at.
    """
    group = optimizer.param_groups[0]
    lr = float(group["lr"])
    if isinstance(optimizer, _ADAMS):
        b1 = float(group["betas"][0])
        c = (2 + 2 * b1) / (1 - b1)
        return c / lr, f"(2 + 2*beta1) / ((1 - beta1) * lr) = {c:g} / lr with beta1={b1:g}, lr={lr:g}"
    if isinstance(optimizer, torch.optim.SGD):
        mom = float(group.get("momentum", 0.0) or 0.0)
        if mom == 0:
            return 2 / lr, f"2 / lr with lr={lr:g}"
        if group.get("nesterov"):
            c = (2 + 2 * mom) / (1 + 2 * mom)
            return c / lr, f"(2 + 2*beta) / ((1 + 2*beta) * lr) = {c:g} / lr with Nesterov beta={mom:g}, lr={lr:g}"
        c = 2 + 2 * mom
        return c / lr, f"(2 + 2*beta) / lr = {c:g} / lr with momentum beta={mom:g}, lr={lr:g}"
    raise TypeError(f"optimizer must be torch.optim.SGD, Adam or AdamW, got {type(optimizer).__name__}")


@dataclass
class SharpnessResult:
    """Top Hessian eigenvalue over one batch, and where it stands against the stability limit."""

    sharpness: float  # top eigenvalue of the loss Hessian (plus the optimizer's L2 term, if any)
    preconditioned: float | None  # Adam: top eigenvalue of P^-1/2 H P^-1/2, P = diag(sqrt(v_hat) + eps)
    threshold: float | None  # stability limit for the relevant sharpness (None without an optimizer)
    threshold_formula: str
    lr: float | None
    optimizer_kind: str  # "none", "sgd" or "adam"
    iters: int  # the most products a power iteration could take (``trace``: one value per product taken)
    trace: list[float] = field(repr=False, default_factory=list)  # Rayleigh quotient per iteration

    @property
    def relevant(self) -> float:
        """The sharpness the threshold applies to: preconditioned for Adam, raw otherwise."""
        return self.preconditioned if self.preconditioned is not None else self.sharpness

    @property
    def ratio(self) -> float | None:
        """``relevant / threshold``: about 1 at the edge of stability, above 1 unstable."""
        return None if self.threshold is None else self.relevant / self.threshold

    def __str__(self) -> str:
        if self.threshold is None:
            return f"sharpness (top Hessian eigenvalue) {self.sharpness:.4g}; 2/lr would be the GD stability limit."
        name = "preconditioned sharpness" if self.preconditioned is not None else "sharpness"
        share = f"{self.ratio:.0%}" if self.ratio >= 0.1 else f"{100 * self.ratio:.2g}%"  # 0.39%, not 0%
        return (
            f"{name} {self.relevant:.4g} vs stability limit {self.threshold:.4g} ({self.threshold_formula}): "
            f"{share} of the limit."
        )


def _power_iteration(
    op: Callable, n: int, like: torch.Tensor, iters: int, gen: torch.Generator, tol: float = 0.0
) -> tuple[float, list]:
    """Largest (algebraic) eigenvalue of the symmetric operator ``op`` on flat vectors of length ``n``.

    Plain power iteration finds the eigenvalue of largest magnitude; when that one is
    negative, a second pass on ``op - lambda I`` (all eigenvalues >= 0) finds the top one.
    Convergence goes with the gap: the error shrinks like (lambda_2 / lambda_1)^(2k).
    A pass stops before ``iters`` once two successive Rayleigh quotients differ by less
    than ``tol`` times the latest: while they converge geometrically, each iteration left
    would add less than that, so the value ends within ``iters x tol`` of the full pass's.
    """

    def run(shift: float) -> tuple[float, list[float]]:
        v = to_device(torch.randn(n, generator=gen, dtype=like.dtype), like.device)  # same start everywhere
        v /= v.norm()
        lam, seen = 0.0, []
        for _ in range(iters):
            hv = op(v)
            if shift:
                hv -= shift * v
            lam, before = float(hv.dot(v)), lam  # the one host sync of an iteration
            seen.append(lam + shift)
            if len(seen) > 1 and abs(lam - before) < tol * abs(lam):
                break
            norm = hv.norm()
            if lam == 0.0 and float(norm) == 0.0:
                break
            v = torch.div(hv, norm, out=v)  # in place: ``op`` never returns its argument
        return lam + shift, seen

    lam, seen = run(0.0)
    if lam < 0:
        lam, more = run(lam)
        seen += more
    # every value seen is a Rayleigh quotient of the operator, so a lower bound on its top
    # eigenvalue: the largest is the best estimate (and guards against an unconverged shift)
    return max(seen) if seen else lam, seen


@dataclass
class _Setting:
    """What the optimizer says about the measurement (no optimizer: raw Hessian, no limit)."""

    params: list
    kind: str = "none"
    threshold: float | None = None
    formula: str = ""
    lr: float | None = None
    l2: list | None = None  # per parameter: the L2 coefficient the optimizer adds to the gradient
    scale: list | None = None  # per parameter: lr of its group / lr of the first group


def _setting(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> _Setting:
    if optimizer is None:
        return _Setting([p for p in model.parameters() if p.requires_grad])
    threshold, formula = stability_threshold(optimizer)
    lr = float(optimizer.param_groups[0]["lr"])
    s = _Setting([], "adam" if isinstance(optimizer, _ADAMS) else "sgd", threshold, formula, lr, [], [])
    model_params = {id(p) for p in model.parameters()}
    for g in optimizer.param_groups:
        for p in g["params"]:
            if not p.requires_grad:
                continue
            if id(p) not in model_params:
                raise ValueError("optimizer holds parameters that are not the model's")
            s.params.append(p)
            # Adam and SGD add weight_decay * w to the gradient; AdamW does not
            s.l2.append(0.0 if isinstance(optimizer, torch.optim.AdamW) else float(g.get("weight_decay", 0.0) or 0.0))
            s.scale.append(float(g["lr"]) / lr)
    return s


def _adam_preconditioner(optimizer: torch.optim.Optimizer, params: list, scale: list) -> torch.Tensor | None:
    """Flat ``P^-1/2``, ``P = sqrt(v_hat) + eps`` (with lr_g / lr_0 folded in), or None without state."""
    hyper = {}
    for g in optimizer.param_groups:
        for p in g["params"]:
            hyper[id(p)] = (g["eps"], g["betas"][1], g.get("amsgrad", False))
    out = []
    for p, s in zip(params, scale):
        st = optimizer.state.get(p)
        if not st or "exp_avg_sq" not in st:
            return None
        eps, beta2, amsgrad = hyper[id(p)]
        v = st["max_exp_avg_sq"] if amsgrad else st["exp_avg_sq"]
        v_hat = v.detach() / (1.0 - beta2 ** float(st["step"]))
        out.append((torch.rsqrt(v_hat.sqrt() + eps) * math.sqrt(s)).reshape(-1))
    return torch.cat(out)


def _hvp(grads, params: list, l2_flat: torch.Tensor | None) -> Callable:
    """``v -> (H + diag(l2)) v`` through the stored graph of ``grads`` (flat vectors).

    Every call writes its result into the same buffer (one large allocation per probe, not
    one per iteration): use it before the next call.
    """
    sizes = [p.numel() for p in params]
    dtype = functools.reduce(torch.promote_types, [p.dtype for p in params])  # what torch.cat would make
    out = torch.empty(sum(sizes), dtype=dtype, device=params[0].device)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        vs = [c.view_as(p) for c, p in zip(v.split(sizes), params)]
        hv = torch.autograd.grad(grads, params, grad_outputs=vs, retain_graph=True, allow_unused=True)
        flatten(hv, params, out)
        return out if l2_flat is None else out.add_(l2_flat * v)

    return hvp


def _per_param(params: list, values: list[float]) -> torch.Tensor:
    like = params[0].detach()
    return torch.cat([torch.full((p.numel(),), v, dtype=like.dtype, device=like.device) for p, v in zip(params, values)])


def estimate_sharpness(
    model: nn.Module,
    batch,
    loss_fn: LossFn | None = None,
    iters: int = 12,
    optimizer: torch.optim.Optimizer | None = None,
    seed: int = 0,
    tol: float = 1e-5,
) -> SharpnessResult:
    """The sharpness on ``batch`` (a fixed ``(x, y)``), by power iteration (see the module's definitions).

    Each iteration is one Hessian-vector product (double backward through one stored
    graph: the forward pass, and so any dropout mask, is the same for all of them).
    ``iters`` is the most a power iteration takes; it stops sooner once two successive
    Rayleigh quotients agree to ``tol`` (relative; ``tol=0``: always ``iters``), and
    ``trace`` holds one value per product taken (the module's "Cost and accuracy").
    With an optimizer: SGD compares the raw value with 2 / lr (momentum-corrected);
    Adam/AdamW also computes the preconditioned sharpness and compares it with
    (2 + 2 beta1) / ((1 - beta1) lr) = 38 / lr at beta1 = 0.9. Parameter groups with
    different LRs are folded in as lr_g / lr_0. Everything the probe touches is restored.
    """
    check_model(model)
    check_int("iters", iters, 1)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
        raise ValueError(f"tol must be a number in [0, 1), got {tol!r}")
    x, y = as_batch(batch, model_device(model))
    s = _setting(model, optimizer)
    params, n = s.params, sum(p.numel() for p in s.params)
    like = params[0].detach()
    l2_flat = _per_param(params, s.l2) if s.l2 and any(s.l2) else None
    gen = torch.Generator().manual_seed(seed)
    pre = None
    with restoring(model, seed=seed):
        grads = torch.autograd.grad(default_loss(loss_fn)(model(x), y), params, create_graph=True)
        hvp = _hvp(grads, params, l2_flat)
        if not s.scale or all(v == 1.0 for v in s.scale):
            top, seen = _power_iteration(hvp, n, like, iters, gen, tol)
        else:  # SGD with group-specific LRs: the LR-weighted curvature is what matters
            d = _per_param(params, [math.sqrt(v) for v in s.scale])
            top, seen = _power_iteration(lambda u: d * hvp(d * u), n, like, iters, gen, tol)
        if s.kind == "adam":
            p_inv = _adam_preconditioner(optimizer, params, s.scale)  # type: ignore[arg-type]
            if p_inv is not None:
                pre, more = _power_iteration(lambda u: p_inv * hvp(p_inv * u), n, like, iters, gen, tol)
                seen += more
        del grads, hvp
    if s.kind == "adam" and pre is None:
        s.formula += "; no Adam state yet (take a step first), so only the raw sharpness was measured"
        s.threshold = None
    return SharpnessResult(
        sharpness=top,
        preconditioned=pre,
        threshold=s.threshold,
        threshold_formula=s.formula,
        lr=s.lr,
        optimizer_kind=s.kind,
        iters=iters,
        trace=seen,
    )


__all__ = ["SharpnessResult", "estimate_sharpness", "stability_threshold"]
