"""NON_FINITE: NaN or infinite losses, gradient norms or LRs that the log holds.

Only logged cells count: a value the log does not hold (an empty cell of a sparse CSV, a
step without a logged norm) is missing, never non-finite. Two cases are told apart:

divergence
    a non-finite loss (step ``loss``, ``train_loss``, ``val_loss``) or LR, or a run the
    trainer stopped for a non-finite value (``meta["non_finite_step"]``): critical.
loss-scaler skips
    non-finite gradient norms on steps whose loss is finite (on the same row, or the next
    logged loss when the row has none), and rows flagged ``skipped``: under fp16 the
    GradScaler skips such steps and lowers its scale. Info when they are at most
    ``SKIP_SHARE_WARNING`` of the steps, else a warning. The finding says how many steps
    were skipped, the first of them, and, when the step rows carry their epoch, how many
    in each epoch (``skipped_per_epoch``: ``[epoch, count]`` pairs).
"""

from __future__ import annotations

import math

import numpy as np

from ..findings import NON_FINITE, Finding
from ..formatting import percent
from .advice import compose, lower_lr
from .context import Context

# the columns checked, per level
COLUMNS = {
    "epoch": ("train_loss", "val_loss", "lr", "grad_norm_p50", "grad_norm_p90", "grad_norm_max"),
    "step": ("loss", "grad_norm", "lr"),
}
DIVERGENCE = {"epoch.train_loss", "epoch.val_loss", "epoch.lr", "step.loss", "step.lr", "step.stopped_at"}
SKIP_SHARE_WARNING = 0.05


def non_finite_values(ctx: Context) -> dict[str, dict]:
    """``{"<level>.<column>": {"count", "first_epoch" (or "first_evaluation", "first_step"), "value"}}``
    per column holding logged NaN or inf (``value`` is the first such float), plus
    ``"step.stopped_at"`` where nbtrain's trainer stopped a diverged run (``meta["non_finite_step"]``)."""
    bad: dict[str, dict] = {}
    for level, names in COLUMNS.items():
        rows = ctx.data.epochs if level == "epoch" else ctx.data.steps
        for name in names:
            values = ctx.data.col(name, level)
            if values is None:
                continue
            idx = np.flatnonzero(ctx.data.logged(name, level) & ~np.isfinite(values))
            if not len(idx):
                continue
            if level == "epoch":
                key, at = ("first_epoch" if ctx.u.whole_epochs else "first_evaluation"), ctx.epochs[idx[0]]
            else:
                key, at = "first_step", int(rows["step"].iloc[idx[0]]) if "step" in rows.columns else int(idx[0])
            bad[f"{level}.{name}"] = {"count": len(idx), key: at, "value": float(values[idx[0]])}
    stopped = ctx.data.meta.get("non_finite_step")
    if stopped:
        value = stopped["loss"] if not math.isfinite(stopped["loss"]) else stopped["grad_norm"]
        bad["step.stopped_at"] = {"count": 1, "first_step": int(stopped["step"]), "value": float(value)}
    return bad


def skipped_steps(ctx: Context) -> np.ndarray:
    """Row positions of the loss-scaler skips (see the module's definitions)."""
    data = ctx.data
    if data.steps is None:
        return np.zeros(0, dtype=int)
    n = len(data.steps)
    skip = np.zeros(n, dtype=bool)
    if "skipped" in data.steps.columns:
        skip |= data.logged("skipped", "step") & data.steps["skipped"].eq(True).to_numpy()
    norms = data.col("grad_norm", "step")
    if norms is not None:
        bad_norm = data.logged("grad_norm", "step") & ~np.isfinite(norms)
        loss = data.col("loss", "step")
        has_loss = data.logged("loss", "step") if loss is not None else np.zeros(n, dtype=bool)
        next_finite = np.zeros(n, dtype=bool)  # the next logged loss, at or after each row, is finite
        state = False
        for i in range(n - 1, -1, -1):
            if has_loss[i]:
                state = bool(np.isfinite(loss[i]))
            next_finite[i] = state
        skip |= bad_norm & next_finite
    return np.flatnonzero(skip)


def skips_per_epoch(ctx: Context, skips: np.ndarray) -> list[list]:
    """``[epoch, count]`` per epoch holding skipped steps, in order (empty when the step rows have no epoch)."""
    epochs = ctx.data.col("epoch", "step") if len(skips) and "epoch" in ctx.data.steps.columns else None
    if epochs is None:
        return []
    values, counts = np.unique(epochs[skips][np.isfinite(epochs[skips])], return_counts=True)
    return [[int(e) if float(e).is_integer() else float(e), int(c)] for e, c in zip(values, counts)]


def _when(per_epoch: list[list]) -> str:
    """``" (epoch 0: 3, epoch 2: 1)"``; empty without epochs."""
    if not per_epoch:
        return ""
    shown = ", ".join(f"epoch {e:g}: {c}" for e, c in per_epoch[:8])
    return f" (per epoch: {shown}{', ...' if len(per_epoch) > 8 else ''})"


def _describe(ctx: Context, name: str, v: dict) -> str:
    column, level = name.split(".")[1], name.split(".")[0]
    if "first_step" in v:
        where = f"step {v['first_step']}"
    else:
        where = ctx.u.at(v.get("first_epoch", v.get("first_evaluation")))
    return f"{column} ({level} rows): {v['count']} non-finite, first {v['value']!r} at {where}"


def check_non_finite(ctx: Context) -> None:
    bad = non_finite_values(ctx)
    skips = skipped_steps(ctx)
    if not bad and not len(skips):
        return
    diverged = bool(DIVERGENCE & set(bad))
    n_norms = int(ctx.data.logged("grad_norm", "step").sum()) if ctx.data.steps is not None else 0
    share = len(skips) / max(n_norms, len(skips), 1)
    steps = ctx.data.step_numbers()
    per_epoch = skips_per_epoch(ctx, skips)
    evidence = dict(bad)
    evidence.update({"divergence": diverged, "skipped_steps": len(skips), "skip_share": share,
                     "first_skipped_steps": [int(steps[i]) for i in skips[:10]], "skipped_per_epoch": per_epoch})
    text = [_describe(ctx, name, v) for name, v in bad.items()]
    if len(skips):
        text.append(f"{len(skips)} step(s) ({percent(share)} of the steps with a logged norm) look like loss-scaler "
                    f"skips (a non-finite gradient norm with a finite loss, or flagged skipped), first at step(s) "
                    f"{', '.join(f'{int(steps[i]):,}' for i in skips[:5])}{_when(per_epoch)}.")
    first = f"step {int(steps[skips[0]]):,}" if len(skips) else ""
    ctx.add(_divergence(ctx, bad, evidence, text) if diverged else _skips(len(skips), share, first, evidence, text))


def _divergence(ctx: Context, bad: dict, evidence: dict, text: list[str]) -> Finding:
    suggestion, changes = compose(
        lower_lr(ctx, "Restart from the last finite checkpoint with a lower learning rate"),
        "Check the inputs and targets for NaN/inf and extreme scales (normalization).",
    )
    return Finding(
        code=NON_FINITE,
        severity="critical",
        title="Non-finite values",
        problem=f"The log holds NaN or infinite values in {len(bad)} column(s).",
        evidence=evidence,
        evidence_text=text,
        explanation="A NaN or inf loss or gradient norm means the run diverged (or the data holds NaN/inf); "
        "every step after it is meaningless, and an infinite pre-clip norm turns the clipped gradient into NaN.",
        suggestion=suggestion,
        changes=changes,
        rationale="Divergence usually follows a step that was too large for the local curvature; a lower LR "
        "and normalized data shrink such steps.",
        monitor="Every loss and gradient norm finite; the largest pre-clip norm per epoch not rising.",
    )


def _skips(n: int, share: float, first: str, evidence: dict, text: list[str]) -> Finding:
    frequent = share > SKIP_SHARE_WARNING
    return Finding(
        code=NON_FINITE,
        severity="warning" if frequent else "info",
        title="Loss-scaler skips (non-finite gradient norms, finite losses)",
        problem=f"{n} step(s) ({percent(share)}) were skipped by the loss scaler, the first at {first} (a NaN or "
        "infinite gradient norm while the loss stays finite, or a row flagged skipped): fp16 mixed precision at "
        "work, not divergence"
        + (", and more of them than the few a scaler needs to settle." if frequent else "."),
        evidence=evidence,
        evidence_text=text,
        explanation="With fp16, a GradScaler multiplies the loss before backward; when the scaled gradients "
        "overflow, the norm comes out inf or NaN, the optimizer step is skipped and the scale is halved. A few "
        "skips, mostly early, are how the scaler finds its scale; frequent ones mean many updates are lost.",
        suggestion="Nothing to do for a few early skips. If they stay frequent: bf16 instead of fp16, a lower "
        "initial loss scale, or find the layer whose activations overflow.",
        rationale="Skipped steps are updates the model never gets; rare skips cost nothing.",
        monitor="Skips becoming rare after the first few hundred steps, and every loss finite.",
    )


__all__ = ["SKIP_SHARE_WARNING", "check_non_finite", "non_finite_values", "skipped_steps", "skips_per_epoch"]
