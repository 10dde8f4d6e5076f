"""Probes: short measurements on a model that say which learning rate and batch size it can take.

- ``lr_range_test``: sweep the LR exponentially over a few steps and watch the loss.
- ``gradient_noise_scale``: B_simple = tr(Sigma) / |G|^2 from gradients at two batch sizes
  (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training", Appendix A).
- ``sharpness``: the top Hessian eigenvalue by power iteration on Hessian-vector products;
  with an Adam optimizer also the preconditioned sharpness of Cohen et al. 2022, each
  compared with the step size's stability limit.
- ``LayerStats``: a callback recording per-layer gradient norm, weight norm and
  update-to-weight ratio every epoch, into ``history.meta["layer_stats"]``.
- ``probe_findings``: the results turned into findings shaped like ``nbtrain.diagnostics``'.

Every probe restores what it touches (parameters, buffers, ``.grad``, train/eval mode,
optimizer state, the torch RNG), so a run after a probe is the run without it, bit for bit.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..training.callbacks import Callback
from ..diagnosis.findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    from ..training.history import History
    from ..training.trainer import Trainer

# finding codes the probes add to those of nbtrain.diagnostics
LR_ABOVE_STABLE_RANGE = "LR_ABOVE_STABLE_RANGE"
BATCH_BELOW_NOISE_SCALE = "BATCH_BELOW_NOISE_SCALE"
LAYER_DOMINATES_GRADIENT = "LAYER_DOMINATES_GRADIENT"

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- shared helpers ------------------------------------------------------------------------
def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _check_model(model) -> list[torch.Tensor]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    return params


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class _Examples:
    """Random access to the examples of a Dataset, a DataLoader's dataset or a tuple of tensors."""

    def __init__(self, data) -> None:
        self.tensors: tuple[torch.Tensor, ...] | None = None
        self.dataset: Dataset | None = None
        if isinstance(data, DataLoader):
            data = data.dataset
        if isinstance(data, TensorDataset):
            self.tensors = tuple(data.tensors)
        elif isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
            if len(data[0]) != len(data[1]):
                raise ValueError(f"inputs and targets differ in length: {len(data[0])} vs {len(data[1])}")
            self.tensors = tuple(data)
        elif isinstance(data, Dataset):
            self.dataset = data
        else:
            raise TypeError(
                f"data must be a torch Dataset, a DataLoader or a tuple (inputs, targets), got {type(data).__name__}"
            )
        if len(self) == 0:
            raise ValueError("data is empty")

    def __len__(self) -> int:
        return len(self.tensors[0]) if self.tensors is not None else len(self.dataset)  # type: ignore[arg-type]

    def take(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self.tensors is not None:
            x, y = (t[idx] for t in self.tensors)
        else:
            from torch.utils.data import default_collate

            batch = default_collate([self.dataset[int(i)] for i in idx])  # type: ignore[index]
            x, y = (batch["x"], batch["y"]) if isinstance(batch, dict) else batch
        return x.to(device), y.to(device)

    def stream(self, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[tuple]:
        """Endless batches: each pass is a fresh permutation, cut into full batches."""
        n = len(self)
        while True:
            perm = torch.randperm(n, generator=generator)
            for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
                yield self.take(perm[i : i + batch_size], device)


def _as_batch(batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch: ``(x, y)``, a dict with ``x``/``y``, or a whole (small) dataset."""
    if isinstance(batch, dict):
        batch = (batch["x"], batch["y"])
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch):
        return batch[0].to(device), batch[1].to(device)
    if isinstance(batch, (Dataset, DataLoader)):
        ex = _Examples(batch)
        return ex.take(torch.arange(len(ex)), device)
    raise TypeError(f"batch must be (inputs, targets) tensors or a Dataset, got {type(batch).__name__}")


@contextmanager
def _restoring(model: nn.Module, optimizer: torch.optim.Optimizer | None = None, seed: int | None = None):
    """Run a probe, then put back everything it may have changed.

    Parameters and buffers (values, in place, so optimizers holding them stay valid),
    ``.grad`` of every parameter, train/eval mode of every module, the optimizer's
    state and hyperparameters, and the CPU and CUDA RNG states. ``seed`` seeds the
    forked RNG inside (dropout masks, random batches drawn from the global RNG).
    """
    state = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    grads = {p: (None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()}
    modes = {m: m.training for m in model.modules()}
    opt_state = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        try:
            yield
        finally:
            with torch.no_grad():
                for k, v in model.state_dict(keep_vars=True).items():
                    v.copy_(state[k])
            for p, g in grads.items():
                p.grad = g
            for m, training in modes.items():
                m.training = training
            if optimizer is not None:
                optimizer.load_state_dict(opt_state)


# -- LR range test -------------------------------------------------------------------------
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
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if finite:  # keep the divergence from squashing the interesting part
            lo, hi = min(finite), max(finite[0], min(finite) * 1.5)
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


def ema_smooth(losses: Sequence[float], smoothing: float) -> list[float]:
    """Exponential moving average with bias correction (as in Adam): ``avg_t / (1 - beta^(t+1))``."""
    out, avg = [], 0.0
    for t, v in enumerate(losses):
        avg = smoothing * avg + (1.0 - smoothing) * v
        out.append(avg / (1.0 - smoothing ** (t + 1)))
    return out


def _curve_features(
    lrs: Sequence[float], smoothed: Sequence[float], losses: Sequence[float] | None, smoothing: float
) -> tuple[int, float, int | None, bool]:
    """``(i_min, margin, i_rise, fell)`` of a sweep.

    ``margin`` is what counts as a real change of the smoothed loss: three standard
    deviations of its noise (estimated from the raw losses up to the minimum, shrunk by
    the EMA's factor sqrt((1 - b) / (1 + b))), and at least 5% of the minimum.
    ``i_rise`` is the first step after the minimum where the smoothed loss is more than
    ``margin`` above it (or non-finite); ``fell`` says whether the loss fell from its
    starting level (median of the first fifth of the sweep) by more than ``margin``.
    """
    n = len(smoothed)
    finite = [i for i in range(n) if math.isfinite(smoothed[i])]
    i_min = min(finite, key=lambda i: smoothed[i]) if finite else 0
    floor = smoothed[i_min] if finite else math.inf
    sd = 0.0
    if losses is not None and i_min >= 2:
        head = [v for v in losses[: i_min + 1] if math.isfinite(v)]
        if len(head) >= 3:
            mean = sum(head) / len(head)
            sd = math.sqrt(sum((v - mean) ** 2 for v in head) / (len(head) - 1))
            sd *= math.sqrt((1.0 - smoothing) / (1.0 + smoothing))
    margin = max(3.0 * sd, 0.05 * abs(floor)) if math.isfinite(floor) else 0.0
    i_rise = next((i for i in range(i_min + 1, n) if not smoothed[i] <= floor + margin), None)
    first = sorted(v for v in (losses if losses is not None else smoothed)[: max(3, n // 5)] if math.isfinite(v))
    start = first[len(first) // 2] if first else math.inf
    fell = math.isfinite(floor) and start - floor > margin
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
    if not any(math.isfinite(v) for v in smoothed):
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
    params = _check_model(model)
    _check_positive("start_lr", start_lr)
    _check_positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ValueError(f"end_lr must be > start_lr, got end_lr={end_lr!r} <= start_lr={start_lr!r}")
    _check_int("num_steps", num_steps, 2)
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if isinstance(diverge_factor, bool) or not isinstance(diverge_factor, (int, float)) or not diverge_factor > 1:
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor!r}")
    _check_int("batch_size", batch_size, 1)
    if grad_clip is not None:
        _check_positive("grad_clip", grad_clip)
    loss_fn = loss_fn if loss_fn is not None else nn.MSELoss()
    examples = _Examples(train_data)
    device = _device(model)
    given = optimizer if isinstance(optimizer, torch.optim.Optimizer) else None
    ratio = end_lr / start_lr
    schedule = [start_lr * ratio ** (i / (num_steps - 1)) for i in range(num_steps)]
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    stopped = False
    with _restoring(model, given, seed=seed):
        opt = _make_optimizer(optimizer, params, start_lr)
        model.train()
        batches = examples.stream(batch_size, torch.Generator().manual_seed(seed), device)
        avg, best = 0.0, math.inf
        for i, lr in enumerate(schedule):
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
                stopped = True
                break
            avg = smoothing * avg + (1.0 - smoothing) * value
            s = avg / (1.0 - smoothing ** (i + 1))
            smoothed.append(s)
            best = min(best, s)
            if s > diverge_factor * best:
                stopped = True
                break
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


# -- gradient noise scale ------------------------------------------------------------------
@dataclass
class NoiseScaleResult:
    """The simple noise scale B_simple = tr(Sigma) / |G|^2 and the estimates behind it."""

    b_simple: float  # inf when the true-gradient estimate is not positive (noise swamps signal)
    grad_sq: float  # |G|^2 estimate, averaged over the pairs
    trace: float  # tr(Sigma) estimate (per-example gradient covariance), averaged
    grad_sq_stderr: float  # standard error of ``grad_sq`` across the pairs
    small_batch: int
    big_batch: int
    n_pairs: int
    grad_sq_pairs: list[float] = field(repr=False, default_factory=list)
    trace_pairs: list[float] = field(repr=False, default_factory=list)
    max_batch: int = 4096  # cap for the recommendation: a power of two <= examples / 16

    @property
    def reliable(self) -> bool:
        """True when |G|^2 is at least two standard errors above zero."""
        return self.grad_sq > 2.0 * self.grad_sq_stderr

    @property
    def recommended_batch_size(self) -> int:
        """The power of two nearest B_simple (on a log scale), between 1 and ``max_batch``."""
        if not math.isfinite(self.b_simple) or self.b_simple <= 0:
            return self.max_batch if self.b_simple > 0 or not math.isfinite(self.b_simple) else 1
        return int(min(self.max_batch, max(1, 2 ** round(math.log2(self.b_simple)))))

    @property
    def b_simple_low(self) -> float:
        """A conservative lower bound: tr(Sigma) / (|G|^2 + 2 standard errors)."""
        denom = self.grad_sq + 2.0 * self.grad_sq_stderr
        return self.trace / denom if denom > 0 and math.isfinite(denom) else 0.0

    def describe(self, batch_size: int | None = None) -> str:
        """A plain sentence on what B_simple says about the batch size."""
        how = f"from {self.n_pairs} pairs of batches of {self.small_batch} and {self.big_batch}"
        if not math.isfinite(self.b_simple):
            head = (
                f"The gradient noise swamps the mean gradient ({how}): the estimate of |G|^2 was not positive, "
                f"so B_simple is very large"
            )
        else:
            head = f"Gradient noise scale B_simple is about {self.b_simple:.3g} ({how})"
            if not self.reliable:
                head += "; the |G|^2 estimate is within two standard errors of zero, so take it as a rough figure"
        if self.b_simple_low > 0 and (not self.reliable or not math.isfinite(self.b_simple)):
            head += f" (at least about {self.b_simple_low:.3g})"
        rec = self.recommended_batch_size
        if rec == self.max_batch and self.b_simple > rec:
            rec_text = f"{rec} (the cap that keeps 16 steps per epoch)"
        else:
            rec_text = f"{rec}"
        if batch_size is None:
            tail = f"a batch of about {rec_text} uses each example's gradient well."
        elif batch_size < self.b_simple:
            tail = (
                f"the batch of {batch_size} is below it, so each step mostly follows noise; a batch of about {rec_text}, "
                f"or gradient accumulation to that size, would need nearly proportionally fewer steps."
            )
        else:
            tail = f"the batch of {batch_size} is at or above it, so a larger batch would mostly waste compute."
        return f"{head}: {tail}"

    def __str__(self) -> str:
        return self.describe()


def _flat_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)])


def gradient_noise_scale(
    model: nn.Module,
    data,
    loss_fn: LossFn | None = None,
    small_batch: int = 8,
    big_batch: int = 256,
    n_pairs: int = 3,
    seed: int = 0,
    n_small: int = 2,
) -> NoiseScaleResult:
    """Estimate the simple gradient noise scale at the model's current parameters.

    Each pair draws ``big_batch`` examples: one backward pass over all of them gives
    G_big, and ``n_small`` disjoint batches of ``small_batch`` taken from them give
    |G_small|^2 (the mean of their squared norms). The unbiased estimators of McCandlish
    et al. 2018 (Appendix A) are then

        |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
        tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1 / B_small - 1 / B_big)

    each averaged over the pairs before the ratio B_simple = tr(Sigma) / |G|^2 is taken
    (a ratio of averages, as the paper advises; an average of ratios is badly biased).
    Each expectation holds on its own, so the small batches may come from the big one.

    The |G|^2 estimate is the hard part when B_simple is large: its noise shrinks with
    ``big_batch``, and one large batch costs far less than as many examples in small
    ones, hence the defaults (about 4% of a reference-experiment epoch). At the defaults
    expect the value to be good to a factor of two or three on the reference model;
    ``reliable`` and ``b_simple_low`` say how far to trust it, and more pairs tighten it. ``loss_fn`` must average over the batch (``reduction="mean"``).
    Gradients are taken in train mode (dropout is part of the noise) with the RNG seeded.
    """
    params = _check_model(model)
    _check_int("small_batch", small_batch, 1)
    _check_int("big_batch", big_batch, 2)
    _check_int("n_pairs", n_pairs, 1)
    _check_int("n_small", n_small, 1)
    if big_batch < n_small * small_batch or big_batch == small_batch:
        raise ValueError(
            f"big_batch must hold n_small x small_batch examples and be larger than small_batch, got "
            f"big_batch={big_batch}, n_small={n_small}, small_batch={small_batch}"
        )
    loss_fn = loss_fn if loss_fn is not None else nn.MSELoss()
    examples = _Examples(data)
    if len(examples) < big_batch:
        raise ValueError(
            f"big_batch must be <= the number of examples ({len(examples)}), got {big_batch}; pass a smaller big_batch"
        )
    device = _device(model)
    gen = torch.Generator().manual_seed(seed)
    b_s, b_b = float(small_batch), float(big_batch)
    g2_pairs: list[torch.Tensor] = []
    tr_pairs: list[torch.Tensor] = []
    with _restoring(model, seed=seed):
        model.train()
        for _ in range(n_pairs):
            idx = torch.randperm(len(examples), generator=gen)[:big_batch]
            x, y = examples.take(idx, device)
            g_big = _flat_grad(loss_fn(model(x), y), params).double()
            s_big = g_big.dot(g_big)
            small_sq = 0.0
            for j in range(n_small):
                sl = slice(j * small_batch, (j + 1) * small_batch)
                g = _flat_grad(loss_fn(model(x[sl]), y[sl]), params).double()
                small_sq = small_sq + g.dot(g)
            s_small = small_sq / n_small
            g2_pairs.append((b_b * s_big - b_s * s_small) / (b_b - b_s))
            tr_pairs.append((s_small - s_big) / (1.0 / b_s - 1.0 / b_b))
    g2 = torch.stack(g2_pairs).cpu()
    tr = torch.stack(tr_pairs).cpu()
    grad_sq, trace = float(g2.mean()), float(tr.mean())
    stderr = float(g2.std() / math.sqrt(n_pairs)) if n_pairs > 1 else math.inf
    b_simple = trace / grad_sq if grad_sq > 0 else math.inf
    return NoiseScaleResult(
        b_simple=b_simple,
        grad_sq=grad_sq,
        trace=trace,
        grad_sq_stderr=stderr,
        small_batch=small_batch,
        big_batch=big_batch,
        n_pairs=n_pairs,
        grad_sq_pairs=g2.tolist(),
        trace_pairs=tr.tolist(),
        max_batch=2 ** int(math.log2(max(1, min(4096, len(examples) // 16)))),
    )


# -- sharpness -----------------------------------------------------------------------------
def stability_threshold(optimizer: torch.optim.Optimizer) -> tuple[float, str]:
    """``(threshold, formula)``: where the relevant sharpness makes the update unstable.

    Gradient descent on a quadratic of curvature lambda is stable while lambda < 2 / lr;
    heavy-ball momentum beta moves that to (2 + 2 beta) / lr, Nesterov to
    (2 + 2 beta) / ((1 + 2 beta) lr); Adam's preconditioned sharpness (with its beta1
    momentum and frozen preconditioner) to (2 + 2 beta1) / ((1 - beta1) lr), 38 / lr
    at beta1 = 0.9 (Cohen et al. 2021, 2022).
    """
    group = optimizer.param_groups[0]
    lr = float(group["lr"])
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        b1 = float(group["betas"][0])
        return (2 + 2 * b1) / ((1 - b1) * lr), f"(2 + 2*beta1) / ((1 - beta1) * lr) with beta1={b1:g}, lr={lr:g}"
    if isinstance(optimizer, torch.optim.SGD):
        mom = float(group.get("momentum", 0.0) or 0.0)
        if mom == 0:
            return 2 / lr, f"2 / lr with lr={lr:g}"
        if group.get("nesterov"):
            return (2 + 2 * mom) / ((1 + 2 * mom) * lr), f"(2 + 2*beta) / ((1 + 2*beta) * lr), beta={mom:g}, lr={lr:g}"
        return (2 + 2 * mom) / lr, f"(2 + 2*beta) / lr with momentum beta={mom:g}, lr={lr:g}"
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
    iters: int
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
        return (
            f"{name} {self.relevant:.4g} vs stability limit {self.threshold:.4g} ({self.threshold_formula}): "
            f"{self.ratio:.0%} of the limit."
        )


def _power_iteration(op: Callable, n: int, like: torch.Tensor, iters: int, gen: torch.Generator) -> tuple[float, list]:
    """Largest (algebraic) eigenvalue of the symmetric operator ``op`` on flat vectors of length ``n``.

    Plain power iteration finds the eigenvalue of largest magnitude; when that one is
    negative, a second pass on ``op - lambda I`` (all eigenvalues >= 0) finds the top one.
    Convergence goes with the gap: the error shrinks like (lambda_2 / lambda_1)^(2k).
    """

    def run(shift: float) -> tuple[float, list[float]]:
        v = torch.randn(n, generator=gen, dtype=like.dtype).to(like.device)
        v /= v.norm()
        lam, seen = 0.0, []
        for _ in range(iters):
            hv = op(v)
            if shift:
                hv -= shift * v
            lam = float(hv.dot(v))  # the one host sync of an iteration
            seen.append(lam + shift)
            norm = hv.norm()
            if lam == 0.0 and float(norm) == 0.0:
                break
            v = hv / norm
        return lam + shift, seen

    lam, seen = run(0.0)
    if lam < 0:
        lam, more = run(lam)
        seen += more
    # every value seen is a Rayleigh quotient of the operator, so a lower bound on its top
    # eigenvalue: the largest is the best estimate (and guards against an unconverged shift)
    return max(seen) if seen else lam, seen


def sharpness(
    model: nn.Module,
    batch,
    loss_fn: LossFn | None = None,
    iters: int = 12,  # each costs ~1.5 training steps: 12 keep the probe under 5% of a reference epoch
    optimizer: torch.optim.Optimizer | None = None,
    seed: int = 0,
) -> SharpnessResult:
    """Top eigenvalue of the Hessian of the loss on ``batch`` (a fixed ``(x, y)``), by power iteration.

    Each iteration is one Hessian-vector product (double backward through one stored
    graph: the forward pass, and so any dropout mask, is the same for all of them).
    With an optimizer: SGD compares the raw value with 2 / lr (momentum-corrected);
    Adam/AdamW also computes the preconditioned sharpness of Cohen et al. 2022,
    lambda_max(P^-1/2 H P^-1/2) with P = diag(sqrt(v_hat) + eps) from the optimizer's
    state, and compares it with (2 + 2 beta1) / ((1 - beta1) lr) = 38 / lr at beta1 = 0.9.
    Parameter groups with different LRs are folded in as lr_g / lr_0. Everything the
    probe touches is restored.
    """
    _check_model(model)
    _check_int("iters", iters, 1)
    loss_fn = loss_fn if loss_fn is not None else nn.MSELoss()
    device = _device(model)
    x, y = _as_batch(batch, device)
    kind, threshold, formula, lr = "none", None, "", None
    model_params = {id(p) for p in model.parameters()}
    if optimizer is not None:
        threshold, formula = stability_threshold(optimizer)
        kind = "adam" if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)) else "sgd"
        lr = float(optimizer.param_groups[0]["lr"])
        params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
        if any(id(p) not in model_params for p in params):
            raise ValueError("optimizer holds parameters that are not the model's")
    else:
        params = [p for p in model.parameters() if p.requires_grad]

    # per-parameter L2 coefficient (Adam and SGD add weight_decay * w to the gradient; AdamW does
    # not) and LR scale lr_g / lr_0 of the parameter's group
    l2 = [0.0] * len(params)
    scale = [1.0] * len(params)
    if optimizer is not None:
        i = 0
        for g in optimizer.param_groups:
            for p in g["params"]:
                if not p.requires_grad:
                    continue
                if not isinstance(optimizer, torch.optim.AdamW):
                    l2[i] = float(g.get("weight_decay", 0.0) or 0.0)
                scale[i] = float(g["lr"]) / lr  # type: ignore[operator]
                i += 1
    sizes = [p.numel() for p in params]
    n = sum(sizes)
    like = params[0].detach()

    def per_param(values: list[float]) -> torch.Tensor:
        return torch.cat([torch.full((k,), v, dtype=like.dtype, device=like.device) for k, v in zip(sizes, values)])

    l2_flat = per_param(l2) if any(l2) else None

    gen = torch.Generator().manual_seed(seed)
    with _restoring(model, seed=seed):
        loss = loss_fn(model(x), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)

        def hvp(v: torch.Tensor) -> torch.Tensor:
            vs = [c.view_as(p) for c, p in zip(v.split(sizes), params)]
            hv = torch.autograd.grad(grads, params, grad_outputs=vs, retain_graph=True, allow_unused=True)
            out = torch.cat([(torch.zeros_like(p) if h is None else h).reshape(-1) for h, p in zip(hv, params)])
            return out if l2_flat is None else out.add_(l2_flat * v)

        def scaled_op(d: torch.Tensor) -> Callable:
            return lambda u: d * hvp(d * u)

        if all(s == 1.0 for s in scale):
            top, seen = _power_iteration(hvp, n, like, iters, gen)
        else:  # SGD with group-specific LRs: the LR-weighted curvature is what matters
            top, seen = _power_iteration(scaled_op(per_param([math.sqrt(s) for s in scale])), n, like, iters, gen)
        pre = None
        if kind == "adam":
            d = _adam_preconditioner(optimizer, params, scale)  # type: ignore[arg-type]
            if d is not None:
                pre, more = _power_iteration(scaled_op(d), n, like, iters, gen)
                seen += more
        del grads, loss
    if kind == "adam" and pre is None:
        formula += "; no Adam state yet (take a step first), so only the raw sharpness was measured"
        threshold = None
    return SharpnessResult(
        sharpness=top,
        preconditioned=pre,
        threshold=threshold,
        threshold_formula=formula,
        lr=lr,
        optimizer_kind=kind,
        iters=iters,
        trace=seen,
    )


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


# -- per-layer statistics ------------------------------------------------------------------
class LayerStats(Callback):
    """Per-layer gradient norm, weight norm and update-to-weight ratio, every epoch.

    Records go to ``trainer.history.meta["layer_stats"]``, one dict per (epoch, layer):
    ``epoch``, ``layer``, ``steps`` (optimizer steps the row covers; fewer than an epoch's
    when the run stopped mid-epoch), ``grad_norm`` (mean over the sampled steps of the
    layer's PRE-clip gradient norm: the post-clip norm divided by the step's clip factor),
    ``grad_norm_max`` (largest sampled), ``grad_share`` (the layer's share of the summed
    squared gradient norms), ``weight_norm`` (at the epoch's end), ``update_ratio`` (mean
    over sampled steps of |w_t - w_{t-1}| / |w_{t-1}|) and ``epoch_update_ratio``
    (|w_end - w_start| / |w_start| over the whole epoch).

    ``by="parameter"`` keeps each tensor (``0.weight``); ``by="module"`` pools tensors of
    one module (``0``). Cost: every ``grad_every`` steps one ``_foreach_norm`` over the
    gradients and a few tiny vector ops, every ``update_every`` steps one copy of the
    weights for the step-update ratio, all on the device; the host sees the numbers once
    per epoch. At the defaults that is about 1-2% of a reference-experiment epoch.
    """

    def __init__(self, by: str = "parameter", grad_every: int = 4, update_every: int = 25) -> None:
        if by not in ("parameter", "module"):
            raise ValueError(f"by must be 'parameter' or 'module', got {by!r}")
        _check_int("grad_every", grad_every, 1)
        _check_int("update_every", update_every, 1)
        self.by = by
        self.grad_every = grad_every
        self.update_every = update_every
        self._reset_epoch_state()

    def _reset_epoch_state(self) -> None:
        self._epoch: int | None = None
        self._steps = 0
        self._done = False

    # -- set-up
    def on_train_begin(self, trainer: "Trainer") -> None:
        names = {id(p): n for n, p in trainer.model.named_parameters()}
        self.params = list(trainer.params)
        pnames = [names.get(id(p), f"param{i}") for i, p in enumerate(self.params)]
        if self.by == "module":
            groups = [n.rsplit(".", 1)[0] if "." in n else n for n in pnames]
        else:
            groups = pnames
        self.layers = list(dict.fromkeys(groups))
        device = self.params[0].device
        self.index = torch.tensor([self.layers.index(g) for g in groups], device=device)
        trainer.history.meta.setdefault("layer_stats", [])
        self._reset_epoch_state()
        self._end_snapshot = [p.detach().clone() for p in self.params]
        self._prev = [p.detach().clone() for p in self.params]  # reused buffer for step updates

    def _pool(self, sq: torch.Tensor) -> torch.Tensor:
        """Per-tensor squared norms -> per-layer squared norms."""
        if self.by == "parameter":
            return sq
        return torch.zeros(len(self.layers), dtype=sq.dtype, device=sq.device).index_add_(0, self.index, sq)

    def _sq_norms(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        return self._pool(torch.stack(torch._foreach_norm(tensors)).float() ** 2)

    def _start_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self._steps = 0
        self._done = False
        n = len(self.layers)
        dev = self.params[0].device
        self._grad_sum = torch.zeros(n, device=dev)
        self._grad_max = torch.zeros(n, device=dev)
        self._grad_sq_sum = torch.zeros(n, device=dev)
        self._ratio_sum = torch.zeros(n, device=dev)
        self._ratio_n = 0
        self._grad_n = 0
        self._measuring = False
        self._start = self._end_snapshot  # the weights before this epoch's first step

    # -- per step
    @torch.no_grad()
    def on_step_end(self, trainer: "Trainer", row: dict) -> None:
        epoch = row["epoch"]
        if self._epoch != epoch:
            if self._epoch is not None and not self._done:
                self._finish(trainer)
            self._start_epoch(epoch)
        if self._steps % self.grad_every == 0:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
            sq = self._sq_norms(grads) / (row.get("clip_factor", 1.0) or 1.0) ** 2  # undo clipping
            norms = sq.sqrt()
            self._grad_sum += norms
            self._grad_sq_sum += sq
            torch.maximum(self._grad_max, norms, out=self._grad_max)
            self._grad_n += 1
        if self._measuring:  # the weights just before this step are in self._prev
            w_sq = self._sq_norms(self._prev)
            torch._foreach_sub_(self._prev, self.params)  # now -(w_t - w_{t-1}), in place
            self._ratio_sum += (self._sq_norms(self._prev) / w_sq.clamp_min(1e-30)).sqrt()
            self._ratio_n += 1
            self._measuring = False
        self._steps += 1
        if self._steps == trainer.steps_per_epoch:
            # finish here, before the trainer saves its history at the end of the epoch
            self._finish(trainer)
        elif (self._steps - 1) % self.update_every == 0:  # measure the next step's update
            torch._foreach_copy_(self._prev, [p.detach() for p in self.params])
            self._measuring = True

    def on_epoch_end(self, trainer: "Trainer", row: dict) -> None:
        if self._epoch is not None and not self._done:
            self._finish(trainer)

    def on_train_end(self, trainer: "Trainer") -> None:
        # a run stopped (or diverged) mid-epoch: record the part that ran (``steps`` says how much)
        if self._epoch is not None and not self._done and self._steps:
            self._finish(trainer)

    @torch.no_grad()
    def _finish(self, trainer: "Trainer") -> None:
        weights = [p.detach() for p in self.params]
        w_sq = self._sq_norms(weights)
        e_sq = self._sq_norms(torch._foreach_sub(weights, self._start))
        e_ratio = (e_sq / self._sq_norms(self._start).clamp_min(1e-30)).sqrt()
        torch._foreach_copy_(self._end_snapshot, weights)
        n = max(self._grad_n, 1)
        total_sq = self._grad_sq_sum.sum().clamp_min(1e-30)
        ratio = self._ratio_sum / self._ratio_n if self._ratio_n else torch.full_like(w_sq, float("nan"))
        table = torch.stack(
            [self._grad_sum / n, self._grad_max, self._grad_sq_sum / total_sq, w_sq.sqrt(), ratio, e_ratio]
        ).T.cpu().tolist()  # the one host transfer of the epoch
        rows = trainer.history.meta.setdefault("layer_stats", [])
        for layer, (g, gmax, share, w, r, er) in zip(self.layers, table):
            rows.append(
                {
                    "epoch": self._epoch,
                    "layer": layer,
                    "steps": self._steps,
                    "grad_norm": g,
                    "grad_norm_max": gmax,
                    "grad_share": share,
                    "weight_norm": w,
                    "update_ratio": r,
                    "epoch_update_ratio": er,
                }
            )
        self._done = True


LAYER_STATS_COLUMNS = (
    "epoch",
    "layer",
    "steps",
    "grad_norm",
    "grad_norm_max",
    "grad_share",
    "weight_norm",
    "update_ratio",
    "epoch_update_ratio",
)


def layer_stats_dataframe(history: "History | dict | list"):
    """``history.meta["layer_stats"]`` (or the list itself) as a DataFrame, one row per epoch and layer."""
    import pandas as pd

    if isinstance(history, list):
        rows = history
    else:
        meta = history.get("meta", history) if isinstance(history, dict) else getattr(history, "meta", None)
        if meta is None:
            raise TypeError(f"history must be a History, its dict or a list of rows, got {type(history).__name__}")
        rows = meta.get("layer_stats", [])
    if not rows:
        return pd.DataFrame(columns=list(LAYER_STATS_COLUMNS))
    df = pd.DataFrame(rows)
    return df[[c for c in LAYER_STATS_COLUMNS if c in df.columns] + [c for c in df.columns if c not in LAYER_STATS_COLUMNS]]


# -- findings ------------------------------------------------------------------------------
def range_test_findings(result: LRRangeResult, lr: float) -> list[Finding]:
    """LR_ABOVE_STABLE_RANGE when ``lr`` is at or past the LR where the sweep's loss rose clearly.

    The minimum itself is not the line: on a flat, noisy curve it is only the luckiest
    batch. The line is where the smoothed loss rose above its minimum by more than its
    noise (``rise_lr``), or where the sweep stopped.
    """
    edge = result.rise_lr if result.rise_lr is not None else result.diverged_lr
    if edge is None or lr < edge:
        return []
    past_div = result.diverged_lr is not None and lr >= result.diverged_lr
    where = (
        f"at or past the LR where the sweep diverged ({result.diverged_lr:.3g})"
        if past_div
        else f"at or past the LR where the sweep's smoothed loss rose clearly above its minimum ({edge:.3g})"
    )
    return [
        Finding(
            code=LR_ABOVE_STABLE_RANGE,
            severity="critical" if past_div else "warning",
            title="Learning rate above the stable range (LR range test)",
            problem=f"The learning rate {lr:.3g} is {where}.",
            evidence={
                "lr": lr,
                "lr_at_min": result.lr_at_min,
                "rise_lr": result.rise_lr,
                "diverged_lr": result.diverged_lr,
                "suggestion": result.suggestion,
                "sweep_steps": len(result.lrs),
                "sweep_start_lr": result.lrs[0],
                "sweep_end_lr": result.lrs[-1],
            },
            evidence_text=[
                f"LR range test over {len(result.lrs)} steps from {result.lrs[0]:.3g} to {result.lrs[-1]:.3g}: "
                f"lowest smoothed loss at lr {result.lr_at_min:.3g}"
                + (f", stopped (diverging) at {result.diverged_lr:.3g}" if result.diverged_lr is not None else ""),
                f"suggested lr {result.suggestion:.3g} ({result.suggestion_method})",
            ],
            explanation=(
                "In an LR range test the loss falls while the LR is in a useful range and turns up once steps "
                "overshoot. Training at or beyond that turning point makes each step undo part of the last."
            ),
            suggestion=f"Lower the learning rate to about {result.suggestion:.2g} (the sweep's suggestion).",
            rationale="Below the turning point a step shrinks the loss instead of overshooting; the suggestion keeps "
            "a factor of ten of headroom.",
            monitor="Training loss falling steadily from the first epoch; pre-clip gradient norms not rising.",
        )
    ]


def sharpness_findings(result: SharpnessResult, at_edge: float = 0.9) -> list[Finding]:
    """LR_ABOVE_STABLE_RANGE when the relevant sharpness is at least ``at_edge`` x its stability limit."""
    if result.ratio is None or result.ratio < at_edge:
        return []
    name = "preconditioned sharpness" if result.preconditioned is not None else "sharpness"
    half_lr = result.lr * 0.5 / result.ratio if result.lr else None
    return [
        Finding(
            code=LR_ABOVE_STABLE_RANGE,
            severity="warning" if result.ratio < 1.1 else "critical",
            title="Learning rate at the edge of stability (sharpness)",
            problem=(
                f"The {name} {result.relevant:.4g} is {result.ratio:.0%} of the stability limit "
                f"{result.threshold:.4g} for lr {result.lr:.3g}."
            ),
            evidence={
                "sharpness": result.sharpness,
                "preconditioned_sharpness": result.preconditioned,
                "threshold": result.threshold,
                "ratio": result.ratio,
                "lr": result.lr,
                "optimizer": result.optimizer_kind,
            },
            evidence_text=[
                f"top Hessian eigenvalue {result.sharpness:.4g}"
                + (f"; preconditioned {result.preconditioned:.4g}" if result.preconditioned is not None else ""),
                f"stability limit {result.threshold:.4g} = {result.threshold_formula}",
            ],
            explanation=(
                "Along the top Hessian direction a step of this size overshoots once the sharpness passes the "
                "limit. Training then hovers at the edge (Cohen et al. 2021, 2022): the loss oscillates and "
                "spikes instead of falling steadily."
            ),
            suggestion=(
                f"Lower the learning rate (about {half_lr:.2g} puts the sharpness at half the limit) or warm it up."
                if half_lr
                else "Lower the learning rate or warm it up."
            ),
            rationale="The limit scales as 1/lr, so a lower LR gives the sharpness room below it.",
            monitor="Sharpness measured every epoch staying below about 80% of the limit; no loss spikes.",
        )
    ]


def noise_scale_findings(result: NoiseScaleResult, batch_size: int) -> list[Finding]:
    """BATCH_BELOW_NOISE_SCALE when the (effective) batch size is below B_simple."""
    _check_int("batch_size", batch_size, 1)
    if batch_size >= result.b_simple:
        return []
    rec = max(result.recommended_batch_size, batch_size * 2)
    value = "larger than could be measured" if not math.isfinite(result.b_simple) else f"about {result.b_simple:.3g}"
    note = "" if result.reliable else " (a rough estimate: |G|^2 is within two standard errors of zero)"
    if result.b_simple_low > batch_size and not result.reliable:
        note += f"; even its lower bound, {result.b_simple_low:.3g}, is above the batch size"
    return [
        Finding(
            code=BATCH_BELOW_NOISE_SCALE,
            severity="warning" if batch_size < result.b_simple_low else "info",
            title="Batch size below the gradient noise scale",
            problem=f"The batch size {batch_size} is below the gradient noise scale B_simple, {value}{note}.",
            evidence={
                "batch_size": batch_size,
                "b_simple": result.b_simple,
                "grad_sq": result.grad_sq,
                "trace": result.trace,
                "grad_sq_stderr": result.grad_sq_stderr,
                "b_simple_low": result.b_simple_low,
                "small_batch": result.small_batch,
                "big_batch": result.big_batch,
                "n_pairs": result.n_pairs,
                "recommended_batch_size": rec,
            },
            evidence_text=[
                f"B_simple = tr(Sigma) / |G|^2 = {result.trace:.3g} / {result.grad_sq:.3g} from {result.n_pairs} "
                f"pairs of batches of {result.small_batch} and {result.big_batch}",
            ],
            explanation=(
                "Below B_simple the noise in a batch's gradient is larger than the gradient itself, so a step "
                "mostly follows noise and a higher LR amplifies it. Up to about B_simple a larger batch cuts the "
                "steps needed nearly in proportion (McCandlish et al. 2018)."
            ),
            suggestion=f"Try a batch size of {rec} (or gradient accumulation over {max(2, rec // batch_size)} batches).",
            rationale="Averaging more examples per step shrinks the gradient noise by the square root of the batch.",
            monitor="Smoother training loss per step and smaller step-to-step swings in the gradient norm.",
        )
    ]


def layer_findings(history_or_rows, share: float = 0.5) -> list[Finding]:
    """LAYER_DOMINATES_GRADIENT when one layer holds more than ``share`` of the squared gradient norm.

    Looks at the last recorded epoch of ``LayerStats`` (a History, its meta, or the rows).
    """
    if isinstance(history_or_rows, list):
        rows = history_or_rows
    else:
        meta = getattr(history_or_rows, "meta", history_or_rows)
        rows = meta.get("layer_stats", []) if isinstance(meta, dict) else []
    if not rows:
        return []
    last = max(r["epoch"] for r in rows)
    latest = [r for r in rows if r["epoch"] == last]
    if len(latest) < 2:
        return []
    top = max(latest, key=lambda r: r["grad_share"])
    if not top["grad_share"] > share:
        return []
    epochs_over = sorted({r["epoch"] for r in rows if r["layer"] == top["layer"] and r["grad_share"] > share})
    return [
        Finding(
            code=LAYER_DOMINATES_GRADIENT,
            severity="warning",
            title=f"One layer dominates the gradient ({top['layer']})",
            problem=(
                f"{top['layer']} holds {top['grad_share']:.0%} of the squared gradient norm in epoch {last} "
                f"(the threshold is {share:.0%})."
            ),
            evidence={
                "layer": top["layer"],
                "epoch": last,
                "grad_share": top["grad_share"],
                "grad_norm": top["grad_norm"],
                "weight_norm": top["weight_norm"],
                "epochs_over_threshold": epochs_over,
                "shares": {r["layer"]: r["grad_share"] for r in latest},
            },
            evidence_text=[
                f"over {share:.0%} in epochs {', '.join(map(str, epochs_over))}",
                f"mean pre-clip gradient norm {top['grad_norm']:.3g} against weight norm {top['weight_norm']:.3g}",
            ],
            explanation=(
                "Clipping the total norm scales every layer by the same factor, so when one layer's gradient is "
                "most of the norm, clipping throttles all the others on its account."
            ),
            suggestion=(
                "Check the scale of this layer's inputs or targets (normalization), consider a lower LR for it "
                "(a parameter group), or clip per layer."
            ),
            rationale="Balanced per-layer gradients let one global LR and clip threshold suit every layer.",
            monitor="Each layer's grad_share in layer_stats_dataframe(history) below half.",
        )
    ]


def probe_findings(
    *,
    lr: float | None = None,
    batch_size: int | None = None,
    range_test: LRRangeResult | None = None,
    noise_scale: NoiseScaleResult | None = None,
    sharpness_result: SharpnessResult | None = None,
    history=None,
    layer_share: float = 0.5,
) -> list[Finding]:
    """All findings the given probe results support. ``lr`` and ``batch_size`` are the run's settings."""
    out: list[Finding] = []
    if range_test is not None:
        if lr is None:
            raise ValueError("lr is needed to judge an LR range test, got None")
        out += range_test_findings(range_test, lr)
    if sharpness_result is not None:
        out += sharpness_findings(sharpness_result)
    if noise_scale is not None:
        if batch_size is None:
            raise ValueError("batch_size is needed to judge a noise scale, got None")
        out += noise_scale_findings(noise_scale, batch_size)
    if history is not None:
        out += layer_findings(history, share=layer_share)
    return out


__all__ = [
    "BATCH_BELOW_NOISE_SCALE",
    "LAYER_DOMINATES_GRADIENT",
    "LR_ABOVE_STABLE_RANGE",
    "LRRangeResult",
    "LayerStats",
    "NoiseScaleResult",
    "SharpnessResult",
    "ema_smooth",
    "gradient_noise_scale",
    "layer_findings",
    "layer_stats_dataframe",
    "lr_range_test",
    "noise_scale_findings",
    "probe_findings",
    "range_test_findings",
    "sharpness",
    "sharpness_findings",
    "stability_threshold",
    "suggest_lr",
]
