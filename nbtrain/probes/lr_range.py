"""LR range test: sweep the learning rate exponentially over a few steps and watch the loss.

Definitions
-----------
smoothed loss
    Exponential moving average of the step losses with Adam's bias correction,
    ``avg_t / (1 - beta^(t+1))`` (``ema_smooth``).
margin
    What counts as a real change of the smoothed loss: three standard deviations of its
    noise (from the raw losses up to the minimum, shrunk by the EMA's factor
    ``sqrt((1 - beta) / (1 + beta))``), and at least 5% of the minimum.
rise
    The first step after the minimum where the smoothed loss is more than ``margin`` above
    it (or non-finite): ``LRRangeResult.rise_lr``.
suggestion
    ``suggest_lr``: a tenth of the LR at the minimum when the loss clearly fell, else a
    tenth of the LR where it rose.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..measures import finite, mean, percentile
from ..training.devices import model_device
from ._common import Examples, LossFn, check_int, check_model, check_positive, default_loss, restoring


@dataclass
class LRRangeResult:
    """One LR sweep. ``suggestion`` is the LR the sweep recommends starting from."""

    lrs: list[float]
    losses: list[float]  # raw training loss of each step
    smoothed: list[float]  # bias-corrected exponential moving average of ``losses``
    stopped_early: bool  # the smoothed loss passed diverge_factor x its best: the sweep stopped
    suggestion: float
    suggestion_method: str
    lr_at_min: float  # LR where the smoothed loss was lowest
    rise_lr: float | None  # first LR past the minimum where the smoothed loss rose clearly above it
    diverged_lr: float | None  # LR at which the sweep stopped (None when it ran to end_lr)

    def plot(self, ax=None):
        """Raw and smoothed loss against LR (log scale), with the suggestion marked. Returns ``ax``."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(self.lrs, self.losses, color="0.75", lw=1, label="loss")
        ax.plot(self.lrs, self.smoothed, color="C0", lw=2, label="smoothed")
        ax.axvline(self.suggestion, color="C2", ls="--", label=f"suggestion {self.suggestion:.2g}")
        ax.axvline(self.lr_at_min, color="C1", ls=":", label=f"minimum {self.lr_at_min:.2g}")
        if self.rise_lr is not None:
            ax.axvline(self.rise_lr, color="C4", ls=":", label=f"rise {self.rise_lr:.2g}")
        if self.diverged_lr is not None:
            ax.axvline(self.diverged_lr, color="C3", ls="-.", label=f"stopped {self.diverged_lr:.2g}")
        ax.set_xscale("log")
        ok = finite(self.smoothed)
        if ok:  # keep the divergence from squashing the interesting part
            lo, hi = min(ok), max(ok[0], min(ok) * 1.5)
            ax.set_ylim(lo - 0.1 * (hi - lo) - 1e-12, hi + 0.4 * (hi - lo) + 1e-12)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title("LR range test")
        ax.legend(fontsize=8)
        return ax

    def __str__(self) -> str:
        end = f"stopped at lr {self.diverged_lr:.3g}" if self.diverged_lr is not None else "ran to the end"
        rise = f"; clear rise from lr {self.rise_lr:.3g}" if self.rise_lr is not None else ""
        return (
            f"LR range test over {len(self.lrs)} steps ({end}): lowest smoothed loss at lr {self.lr_at_min:.3g}"
            f"{rise}; suggested lr {self.suggestion:.3g} ({self.suggestion_method})."
        )


class _Ema:
    """The smoothed loss, one value at a time (see the module's definition)."""

    def __init__(self, smoothing: float) -> None:
        self.beta, self.avg, self.t = smoothing, 0.0, 0

    def add(self, value: float) -> float:
        self.avg = self.beta * self.avg + (1.0 - self.beta) * value
        self.t += 1
        return self.avg / (1.0 - self.beta**self.t)


def ema_smooth(losses: Sequence[float], smoothing: float) -> list[float]:
    """Exponential moving average with bias correction (as in Adam): ``avg_t / (1 - beta^(t+1))``."""
    ema = _Ema(smoothing)
    return [ema.add(v) for v in losses]


def _curve_features(
    lrs: Sequence[float], smoothed: Sequence[float], losses: Sequence[float] | None, smoothing: float
) -> tuple[int, float, int | None, bool]:
    """``(i_min, margin, i_rise, fell)`` of a sweep (see the module's definitions).

    ``fell`` says whether the loss fell from its starting level (median of the first
    fifth of the sweep, at least 3 steps) by more than ``margin``.
    """
    n = len(smoothed)
    ok = [i for i in range(n) if math.isfinite(smoothed[i])]
    i_min = min(ok, key=lambda i: smoothed[i]) if ok else 0
    floor = smoothed[i_min] if ok else math.inf
    sd = 0.0
    if losses is not None and i_min >= 2:
        head = finite(losses[: i_min + 1])
        if len(head) >= 3:
            sd = statistics.stdev(head, mean(head)) * math.sqrt((1.0 - smoothing) / (1.0 + smoothing))
    margin = max(3.0 * sd, 0.05 * abs(floor)) if math.isfinite(floor) else 0.0
    i_rise = next((i for i in range(i_min + 1, n) if not smoothed[i] <= floor + margin), None)
    start = percentile((losses if losses is not None else smoothed)[: max(3, n // 5)], 50)
    fell = math.isfinite(floor) and math.isfinite(start) and start - floor > margin
    return i_min, margin, i_rise, fell


def suggest_lr(
    lrs: Sequence[float],
    smoothed: Sequence[float],
    losses: Sequence[float] | None = None,
    smoothing: float = 0.0,
    divisor: float = 10.0,
) -> tuple[float, str]:
    """The LR to start from: ``(lr, method)``.

    When the loss clearly fell during the sweep: a tenth of the LR at the minimum of the
    smoothed loss. Why not the steepest fall of the curve (the other common rule)? A
    spike only ever raises the loss, and the smoothed curve then falls steeply on its way
    back down: a steepest-slope pick lands right after the spike, often decades below
    any LR that trains. A spike does not move the minimum, and a tenth of it sits in the
    falling part of a well-shaped curve (Smith 2017; fastai's ``lr_min``).

    When the loss did not fall by more than its noise (a short sweep often cannot see
    learning at small LRs, only the blow-up), the minimum is just the luckiest batch; the
    answer is then a tenth of the LR where the loss began to rise clearly. Pass the raw
    ``losses`` and the ``smoothing`` used so the noise level can be estimated.
    """
    if not finite(smoothed):
        return float(lrs[0]) / divisor, f"first LR / {divisor:g} (no finite loss)"
    i_min, _, i_rise, fell = _curve_features(lrs, smoothed, losses, smoothing)
    if fell and i_min > 0:
        return float(lrs[i_min]) / divisor, f"LR at the smoothed loss's minimum / {divisor:g}"
    if i_rise is not None:
        return (
            float(lrs[i_rise]) / divisor,
            f"LR where the loss began to rise / {divisor:g} (no clear fall before it: the sweep saw only the blow-up)",
        )
    if i_min == 0:
        return float(lrs[0]) / divisor, f"first LR / {divisor:g} (the loss never fell: start lower)"
    return float(lrs[i_min]) / divisor, f"LR at the smoothed loss's minimum / {divisor:g} (flat curve: a weak hint)"


def _make_optimizer(optimizer, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"optimizer must be 'adam', 'sgd' or a torch.optim.Optimizer, got {optimizer!r}")


def _check_sweep(start_lr, end_lr, num_steps, smoothing, diverge_factor, batch_size, grad_clip) -> None:
    check_positive("start_lr", start_lr)
    check_positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ValueError(f"end_lr must be > start_lr, got end_lr={end_lr!r} <= start_lr={start_lr!r}")
    check_int("num_steps", num_steps, 2)
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if isinstance(diverge_factor, bool) or not isinstance(diverge_factor, (int, float)) or not diverge_factor > 1:
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor!r}")
    check_int("batch_size", batch_size, 1)
    if grad_clip is not None:
        check_positive("grad_clip", grad_clip)


def _sweep(model, params, opt, batches, loss_fn, schedule, smoothing, diverge_factor, grad_clip) -> tuple:
    """Train one step per LR of ``schedule``; ``(lrs, losses, smoothed, stopped)``."""
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    ema, best = _Ema(smoothing), math.inf
    for lr in schedule:
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = next(batches)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
        opt.step()
        value = float(loss.detach())  # one host sync per step: the sweep must see divergence at once
        lrs.append(lr)
        losses.append(value)
        if not math.isfinite(value):
            smoothed.append(math.inf)
            return lrs, losses, smoothed, True
        s = ema.add(value)
        smoothed.append(s)
        best = min(best, s)
        if s > diverge_factor * best:
            return lrs, losses, smoothed, True
    return lrs, losses, smoothed, False


def lr_range_test(
    model: nn.Module,
    train_data,
    loss_fn: LossFn | None = None,
    optimizer: str | torch.optim.Optimizer = "adam",
    start_lr: float = 1e-7,
    end_lr: float = 1e-1,
    num_steps: int = 20,  # one training step each: about 4% of a 500-step reference epoch
    smoothing: float = 0.8,  # EMA factor; its time constant (~5 steps) must be short next to the sweep
    diverge_factor: float = 4.0,
    batch_size: int = 8,
    seed: int = 0,
    grad_clip: float | None = None,
) -> LRRangeResult:
    """Train for ``num_steps`` steps with the LR growing exponentially from ``start_lr`` to ``end_lr``.

    The sweep stops once the smoothed loss exceeds ``diverge_factor`` times its best (or
    turns non-finite). ``optimizer`` is ``"adam"``, ``"sgd"`` or an optimizer over the
    model's parameters (its state is used, then restored). ``grad_clip`` clips the total
    gradient norm as the trainer does. The model, any optimizer given and the RNG are
    restored afterwards. The defaults keep the cost under 5% of a reference-experiment
    epoch (20 of its 500 steps), which makes the sweep coarse (about 3 steps per decade):
    raise ``num_steps`` (and ``smoothing`` with it) for a finer curve.
    """
    params = check_model(model)
    _check_sweep(start_lr, end_lr, num_steps, smoothing, diverge_factor, batch_size, grad_clip)
    examples = Examples(train_data)
    device = model_device(model)
    given = optimizer if isinstance(optimizer, torch.optim.Optimizer) else None
    ratio = end_lr / start_lr
    schedule = [start_lr * ratio ** (i / (num_steps - 1)) for i in range(num_steps)]
    with restoring(model, given, seed=seed):
        opt = _make_optimizer(optimizer, params, start_lr)
        model.train()
        batches = examples.stream(batch_size, torch.Generator().manual_seed(seed), device)
        lrs, losses, smoothed, stopped = _sweep(
            model, params, opt, batches, default_loss(loss_fn), schedule, smoothing, diverge_factor, grad_clip
        )
    suggestion, method = suggest_lr(lrs, smoothed, losses, smoothing)
    i_min, _, i_rise, _ = _curve_features(lrs, smoothed, losses, smoothing)
    return LRRangeResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        stopped_early=stopped,
        suggestion=suggestion,
        suggestion_method=method,
        lr_at_min=lrs[i_min],
        rise_lr=None if i_rise is None else lrs[i_rise],
        diverged_lr=lrs[-1] if stopped else None,
    )


__all__ = ["LRRangeResult", "ema_smooth", "lr_range_test", "suggest_lr"]
