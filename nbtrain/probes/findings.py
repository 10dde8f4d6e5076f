"""Probe results as findings (``nbtrain.diagnosis.findings.Finding``), beside those of ``diagnose``.

Each builder returns a list: empty when the probe finds nothing to report. ``probe_findings``
collects them for a run's settings. The codes and when they fire (``PROBE_CODES``):

- ``LR_ABOVE_STABLE_RANGE``: the LR is at or past where the LR range test's loss rose
  clearly (or diverged), or the relevant sharpness is at least 90% of its stability limit;
- ``BATCH_BELOW_NOISE_SCALE``: the (effective) batch size is below B_simple;
- ``LAYER_DOMINATES_GRADIENT``: in the last recorded epoch one layer holds more than half
  of the squared gradient norm.
"""

from __future__ import annotations

import math

from ..diagnosis.findings import Finding
from ._common import check_int
from .layers import layer_stats_rows
from .lr_range import LRRangeResult
from .noise_scale import NoiseScaleResult
from .sharpness import SharpnessResult

LR_ABOVE_STABLE_RANGE = "LR_ABOVE_STABLE_RANGE"
BATCH_BELOW_NOISE_SCALE = "BATCH_BELOW_NOISE_SCALE"
LAYER_DOMINATES_GRADIENT = "LAYER_DOMINATES_GRADIENT"

PROBE_CODES: dict[str, str] = {
    LR_ABOVE_STABLE_RANGE: "the LR is at or past where the LR range test's loss rose clearly (or diverged), or "
    "the relevant sharpness is at least 90% of the optimizer's stability limit",
    BATCH_BELOW_NOISE_SCALE: "the (effective) batch size is below the gradient noise scale B_simple",
    LAYER_DOMINATES_GRADIENT: "in the last recorded epoch one layer holds more than half of the squared gradient norm",
}


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
    lrs = result.lrs
    stopped = f", stopped (diverging) at {result.diverged_lr:.3g}" if result.diverged_lr is not None else ""
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
                "sweep_steps": len(lrs),
                "sweep_start_lr": lrs[0],
                "sweep_end_lr": lrs[-1],
            },
            evidence_text=[
                f"LR range test over {len(lrs)} steps from {lrs[0]:.3g} to {lrs[-1]:.3g}: "
                f"lowest smoothed loss at lr {result.lr_at_min:.3g}{stopped}",
                f"suggested lr {result.suggestion:.3g} ({result.suggestion_method})",
            ],
            explanation=(
                "In an LR range test the loss falls while the LR is in a useful range and turns up once steps "
                "overshoot. Training at or beyond that turning point makes each step undo part of the last."
            ),
            suggestion=f"Lower the learning rate to about {result.suggestion:.2g} (the sweep's suggestion).",
            rationale="Below the turning point a step shrinks the loss instead of overshooting; the suggestion sits "
            "below it (by default where a single step first made a fixed batch's loss clearly worse).",
            monitor="Training loss falling steadily from the first epoch; pre-clip gradient norms not rising.",
        )
    ]


def sharpness_findings(result: SharpnessResult, at_edge: float = 0.9) -> list[Finding]:
    """LR_ABOVE_STABLE_RANGE when the relevant sharpness is at least ``at_edge`` x its stability limit."""
    if result.ratio is None or result.ratio < at_edge:
        return []
    name = "preconditioned sharpness" if result.preconditioned is not None else "sharpness"
    half_lr = result.lr * 0.5 / result.ratio if result.lr else None
    pre = f"; preconditioned {result.preconditioned:.4g}" if result.preconditioned is not None else ""
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
                f"top Hessian eigenvalue {result.sharpness:.4g}{pre}",
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
    check_int("batch_size", batch_size, 1)
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

    Looks at the last recorded epoch of ``LayerStats`` (a History, its dict or meta, or the rows).
    """
    rows = layer_stats_rows(history_or_rows)
    if not rows:
        return []
    last = max(r["epoch"] for r in rows)
    latest = [r for r in rows if r["epoch"] == last]
    top = max(latest, key=lambda r: r["grad_share"])
    if len(latest) < 2 or not top["grad_share"] > share:  # a single layer always holds everything
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
    "PROBE_CODES",
    "layer_findings",
    "noise_scale_findings",
    "probe_findings",
    "range_test_findings",
    "sharpness_findings",
]
