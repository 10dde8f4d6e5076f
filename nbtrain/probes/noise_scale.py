"""Gradient noise scale: B_simple = tr(Sigma) / |G|^2 from gradients at two batch sizes.

McCandlish et al. 2018, "An Empirical Model of Large-Batch Training", Appendix A.
B_simple is the batch size at which the noise in a batch's gradient is about as large as
the gradient itself: below it, a larger batch needs nearly proportionally fewer steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..training.devices import model_device
from ._common import Examples, LossFn, check_int, check_model, default_loss, flat_grad, restoring


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

    def _estimate_text(self) -> str:
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
        return head

    def describe(self, batch_size: int | None = None) -> str:
        """A plain sentence on what B_simple says about the batch size."""
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
        return f"{self._estimate_text()}: {tail}"

    def __str__(self) -> str:
        return self.describe()


def _check_batches(small_batch: int, big_batch: int, n_pairs: int, n_small: int, n_examples: int) -> None:
    check_int("small_batch", small_batch, 1)
    check_int("big_batch", big_batch, 2)
    check_int("n_pairs", n_pairs, 1)
    check_int("n_small", n_small, 1)
    if big_batch < n_small * small_batch or big_batch == small_batch:
        raise ValueError(
            f"big_batch must hold n_small x small_batch examples and be larger than small_batch, got "
            f"big_batch={big_batch}, n_small={n_small}, small_batch={small_batch}"
        )
    if n_examples < big_batch:
        raise ValueError(
            f"big_batch must be <= the number of examples ({n_examples}), got {big_batch}; pass a smaller big_batch"
        )


def _pair_estimates(
    model, params, loss_fn, x, y, small_batch: int, n_small: int, buf: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|G|^2, tr(Sigma))`` estimates from one big batch ``(x, y)`` and ``n_small`` small ones inside it.

    Each gradient is flattened into ``buf`` (float64, one per call of the probe), so its
    squared norm is taken in double precision without a new vector per gradient.
    """
    b_s, b_b = float(small_batch), float(len(x))
    g_big = flat_grad(loss_fn(model(x), y), params, buf)
    s_big = g_big.dot(g_big)
    small_sq = 0.0
    for j in range(n_small):
        sl = slice(j * small_batch, (j + 1) * small_batch)
        g = flat_grad(loss_fn(model(x[sl]), y[sl]), params, buf)
        small_sq = small_sq + g.dot(g)
    s_small = small_sq / n_small
    return (b_b * s_big - b_s * s_small) / (b_b - b_s), (s_small - s_big) / (1.0 / b_s - 1.0 / b_b)


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
    ones, hence the defaults (4.7-5.7% of a reference epoch, ``benchmarks/bench_probes.py``).
    The value scatters from seed to seed: on the reference model after 300 ROUND1 steps,
    77 to 786 for the middle 80% of seeds 0-29; after a full epoch ``reliable`` held for 32
    of seeds 0-99. ``reliable`` and ``b_simple_low`` say how far to trust one value.
    ``loss_fn`` must average over the batch (``reduction="mean"``). Gradients are taken
    in train mode (dropout is part of the noise) with the RNG seeded.
    """
    params = check_model(model)
    examples = Examples(data)
    _check_batches(small_batch, big_batch, n_pairs, n_small, len(examples))
    loss_fn = default_loss(loss_fn)
    device = model_device(model)
    gen = torch.Generator().manual_seed(seed)
    buf = torch.empty(sum(p.numel() for p in params), dtype=torch.float64, device=params[0].device)
    pairs = []
    with restoring(model, seed=seed):
        model.train()
        for _ in range(n_pairs):
            x, y = examples.take(torch.randperm(len(examples), generator=gen)[:big_batch], device)
            pairs.append(torch.stack(_pair_estimates(model, params, loss_fn, x, y, small_batch, n_small, buf)))
    g2, tr = torch.stack(pairs).cpu().T
    grad_sq, trace = float(g2.mean()), float(tr.mean())
    return NoiseScaleResult(
        b_simple=trace / grad_sq if grad_sq > 0 else math.inf,
        grad_sq=grad_sq,
        trace=trace,
        grad_sq_stderr=float(g2.std() / math.sqrt(n_pairs)) if n_pairs > 1 else math.inf,
        small_batch=small_batch,
        big_batch=big_batch,
        n_pairs=n_pairs,
        grad_sq_pairs=g2.tolist(),
        trace_pairs=tr.tolist(),
        max_batch=2 ** int(math.log2(max(1, min(4096, len(examples) // 16)))),
    )


__all__ = ["NoiseScaleResult", "gradient_noise_scale"]
