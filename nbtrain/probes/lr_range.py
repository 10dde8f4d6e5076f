"""LR range test: sweep the learning rate exponentially over a few hundred steps and watch the loss.

``lr_range_test`` trains one step per LR and records three curves: the loss of each step's
own batch, its smoothed version, and the loss of a fixed probe batch after each step. The
curves' features and the suggestion rules (probe loss, onset, smoothed loss, margin, rise,
both suggestions) are defined in ``nbtrain.probes.lr_rules``.

Why a probe batch and 300 steps (issue 18)
------------------------------------------
At batch 8 the step losses of the reference experiment scatter by about 30% from batch to
batch, and a sweep of a few hundred steps lowers them by less than that: the smoothed
minimum landed anywhere from 1e-7 to 3e-3 from one seed to the next. The old default (20
steps, a tenth of the minimum or of the rise) suggested 2.3e-3 for ROUND1, where 3-epoch
trainings end about 10x worse than at the best LR. The probe loss has no batch noise, and
its first clear rise (the onset) sits near where short trainings are best. Measured with
``check_lr_suggestion`` (3 epochs; ``benchmarks/bench_lr_range.py``):

- reference experiment, ROUND1 (batch 8, clip 2.0), training seeds 0-4: best LR of the grid
  3.16e-4 (mean best validation loss 0.028; 2.3e-4: 0.056, 8.1e-4: 0.054, 1e-3: 0.083,
  2.3e-3: 0.27, 2e-5: 0.46). The suggestion was 6.2e-4 to 6.5e-4 for model seeds 0-4 (with
  sweep seeds 0-2, between 2.0e-4 and 6.5e-4): at 6.2e-4, 2x the best LR, the mean was
  0.059 (0.033 to 0.089 by seed), 2.1x the best, just over the 2x the check allows;
- small regression tasks of ``tests/tasks.py`` (4-16-1 MLP, Adam, 384-768 steps in 3
  epochs; five variants of size, batch and noise, 9 sweeps each; training seeds 0 and 1):
  the suggestion lay within 3x of the best LR of a quarter-decade grid in 42 of 45 sweeps
  (median 1.3x, at most 5.6x away). The onset there is noisier (the loss reaches its
  floor within the sweep), and the trainings' best LR falls with their length, which a
  sweep cannot know.

The onset moves with the sweep's pace over the six decades. At 100 steps it lay at 1e-3 to
3.1e-3 on the reference (too high), at 200 at 3.1e-4 to 1.7e-3, at 300 as above, at 500 at
2.5e-4 to 4.9e-4; on the small tasks 200 steps did best (45 of 45 within 3x), 500 worst (38
of 45, median 2.2x). 300 is where both hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..measures import finite
from ..training.devices import model_device
from ._common import Examples, LossFn, check_int, check_model, check_positive, default_loss, restoring
from .lr_rules import ONSET_RISE, Ema, curve_features, ema_smooth, probe_onset, suggest_from_probe, suggest_lr


@dataclass
class LRRangeResult:
    """One LR sweep. ``suggestion`` is the LR the sweep recommends starting from."""

    lrs: list[float]
    losses: list[float]  # raw training loss of each step
    smoothed: list[float]  # bias-corrected exponential moving average of ``losses``
    stopped_early: bool  # the smoothed loss passed diverge_factor x its best: the sweep stopped
    suggestion: float
    suggestion_method: str
    lr_at_min: float  # LR where the smoothed loss was lowest (past its warm-up)
    rise_lr: float | None  # first LR from which the smoothed loss stayed clearly above its minimum
    diverged_lr: float | None  # LR at which the sweep stopped (None when it ran to end_lr)
    probe_losses: list[float] | None = None  # loss on the fixed probe batch after each step (None: no probe)
    probe_start: float | None = None  # the probe loss before the first step
    onset_lr: float | None = None  # first LR whose probe loss rose ONSET_RISE above the lowest so far

    def plot(self, ax=None):
        """Raw, smoothed and probe loss against LR (log scale), with the suggestion marked. Returns ``ax``."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(self.lrs, self.losses, color="0.75", lw=1, label="loss of each step's batch")
        ax.plot(self.lrs, self.smoothed, color="C0", lw=2, label="smoothed")
        if self.probe_losses is not None:
            ax.plot(self.lrs, self.probe_losses, color="C1", lw=1.5, label="probe loss (fixed batch)")
        ax.axvline(self.suggestion, color="C2", ls="--", label=f"suggestion {self.suggestion:.2g}")
        if self.rise_lr is not None:
            ax.axvline(self.rise_lr, color="C4", ls=":", label=f"rise {self.rise_lr:.2g}")
        if self.diverged_lr is not None:
            ax.axvline(self.diverged_lr, color="C3", ls="-.", label=f"stopped {self.diverged_lr:.2g}")
        ax.set_xscale("log")
        ok = finite(self.smoothed + (self.probe_losses or []))
        if ok:  # keep the divergence from squashing the interesting part
            lo, hi = min(ok), max(finite(self.smoothed[:1] + (self.probe_losses or [])[:1]) + [min(ok) * 1.5])
            ax.set_ylim(lo - 0.1 * (hi - lo) - 1e-12, hi + 0.4 * (hi - lo) + 1e-12)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title("LR range test")
        ax.legend(fontsize=8)
        return ax

    def __str__(self) -> str:
        end = f"stopped at lr {self.diverged_lr:.3g}" if self.diverged_lr is not None else "ran to the end"
        onset = "" if self.onset_lr is None else f"; probe loss first rose {ONSET_RISE:.0%} at lr {self.onset_lr:.3g}"
        rise = f"; smoothed loss rose for good from lr {self.rise_lr:.3g}" if self.rise_lr is not None else ""
        return (
            f"LR range test over {len(self.lrs)} steps ({end}){onset}: lowest smoothed loss at lr {self.lr_at_min:.3g}"
            f"{rise}; suggested lr {self.suggestion:.3g} ({self.suggestion_method})."
        )


def _make_optimizer(optimizer, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"optimizer must be 'adam', 'sgd' or a torch.optim.Optimizer, got {optimizer!r}")


def _check_sweep(start_lr, end_lr, num_steps, smoothing, diverge_factor, batch_size, grad_clip, probe_size) -> None:
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
    check_int("probe_size", probe_size, 0)


class _Probe:
    """The fixed probe batch and its loss in eval mode (the model is put back in train mode)."""

    def __init__(self, batch: tuple[torch.Tensor, torch.Tensor] | None, loss_fn: LossFn) -> None:
        self.batch, self.loss_fn = batch, loss_fn

    def __call__(self, model: nn.Module) -> float | None:
        if self.batch is None:
            return None
        model.eval()
        with torch.no_grad():
            value = float(self.loss_fn(model(self.batch[0]), self.batch[1]))
        model.train()
        return value


def _sweep(model, params, opt, batches, loss_fn, schedule, smoothing, diverge_factor, grad_clip, probe) -> dict:
    """Train one step per LR of ``schedule``; the curves, the probe loss after each step, and whether it stopped."""
    out: dict = {"lrs": [], "losses": [], "smoothed": [], "probe": [], "stopped": True}
    ema, best = Ema(smoothing), math.inf
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
        out["lrs"].append(lr)
        out["losses"].append(value)
        out["probe"].append(probe(model))
        if not math.isfinite(value):
            out["smoothed"].append(math.inf)
            return out
        s = ema.add(value)
        out["smoothed"].append(s)
        best = min(best, s)
        if s > diverge_factor * best:
            return out
    out["stopped"] = False
    return out


def lr_range_test(
    model: nn.Module,
    train_data,
    loss_fn: LossFn | None = None,
    optimizer: str | torch.optim.Optimizer = "adam",
    start_lr: float = 1e-7,
    end_lr: float = 1e-1,
    num_steps: int = 300,  # the pace that matters: see the module docstring
    smoothing: float = 0.9,  # EMA factor of the step losses; its time constant (~10 steps) is short next to the sweep
    diverge_factor: float = 4.0,
    batch_size: int = 8,
    seed: int = 0,
    grad_clip: float | None = None,
    probe_size: int = 64,
) -> LRRangeResult:
    """Train for ``num_steps`` steps with the LR growing exponentially from ``start_lr`` to ``end_lr``.

    After every step the loss of a fixed probe batch of ``probe_size`` training examples
    is taken (eval mode, no gradients); the suggestion is the LR at which that loss first
    rose 10% above its best so far, the largest LR before any step made the model
    clearly worse (``lr_rules``). Meant for trainings of a few hundred steps or more;
    shorter ones take larger LRs. Confirm it with ``check_lr_suggestion`` (the module
    docstring has the measurements). The sweep stops once the smoothed step loss exceeds ``diverge_factor``
    times its best (or turns non-finite). ``optimizer``: ``"adam"``, ``"sgd"`` or an
    optimizer over the model's parameters (its state is used, then restored).
    ``grad_clip`` clips the total gradient norm as the trainer does. The model, any
    optimizer given and the RNG are restored afterwards. ``probe_size=0``: no probe, the
    suggestion from the step losses alone (``suggest_lr``, fastai's ``lr_min``), with the
    batches of the old sweep.

    Cost: ``num_steps`` training steps and as many forward passes of the probe batch. On
    the reference model (one thread, the 2-core machine shared) the sweep stopped between
    5e-3 and 1.4e-2 after 235-300 steps and took 1.3-2.7 s, 0.7-1.4 times a 500-step
    ROUND1 training epoch (about 1.1 in the median; 2026-12-01): a sweep step costs about
    twice a trainer's step (the sweep runs PyTorch's default Adam kernel, the trainer the
    fused one, and each sweep step adds the probe batch's forward pass). The old default
    took 18-20 steps, 0.07-0.13 s.
    """
    params = check_model(model)
    _check_sweep(start_lr, end_lr, num_steps, smoothing, diverge_factor, batch_size, grad_clip, probe_size)
    examples = Examples(train_data)
    device = model_device(model)
    given = optimizer if isinstance(optimizer, torch.optim.Optimizer) else None
    ratio = end_lr / start_lr
    schedule = [start_lr * ratio ** (i / (num_steps - 1)) for i in range(num_steps)]
    loss = default_loss(loss_fn)
    with restoring(model, given, seed=seed):
        opt = _make_optimizer(optimizer, params, start_lr)
        model.train()
        generator = torch.Generator().manual_seed(seed)
        probe = _Probe(_probe_batch(examples, probe_size, generator, device), loss)
        start = probe(model)
        batches = examples.stream(batch_size, generator, device)
        curves = _sweep(model, params, opt, batches, loss, schedule, smoothing, diverge_factor, grad_clip, probe)
    return _result(curves, smoothing, start)


def _probe_batch(examples: Examples, size: int, generator: torch.Generator, device) -> tuple | None:
    """``size`` training examples drawn once (all of them when there are fewer), or None for ``size`` 0."""
    if size == 0:
        return None
    return examples.take(torch.randperm(len(examples), generator=generator)[:size], device)


def _result(curves: dict, smoothing: float, probe_start: float | None) -> LRRangeResult:
    lrs, losses, smoothed = curves["lrs"], curves["losses"], curves["smoothed"]
    probe = None if probe_start is None else curves["probe"]
    if probe is None:
        suggestion, method = suggest_lr(lrs, smoothed, losses, smoothing)
        onset = None
    else:
        suggestion, method = suggest_from_probe(lrs, probe, probe_start)
        i_onset = probe_onset(probe, probe_start)
        onset = None if i_onset is None else lrs[i_onset]
    i_min, _, i_rise, _ = curve_features(lrs, smoothed, losses, smoothing)
    return LRRangeResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        stopped_early=curves["stopped"],
        suggestion=suggestion,
        suggestion_method=method,
        lr_at_min=lrs[i_min],
        rise_lr=None if i_rise is None else lrs[i_rise],
        diverged_lr=lrs[-1] if curves["stopped"] else None,
        probe_losses=probe,
        probe_start=probe_start,
        onset_lr=onset,
    )


__all__ = [
    "ONSET_RISE",
    "LRRangeResult",
    "ema_smooth",
    "lr_range_test",
    "probe_onset",
    "suggest_from_probe",
    "suggest_lr",
]
