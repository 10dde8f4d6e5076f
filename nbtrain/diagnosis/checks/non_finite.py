"""NON_FINITE: NaN or infinite losses, gradient norms or LRs in the log."""

from __future__ import annotations

import math

import numpy as np

from ..findings import NON_FINITE, Finding
from .context import Context

# the columns checked, per level
COLUMNS = {
    "epoch": ("train_loss", "val_loss", "lr", "grad_norm_p50", "grad_norm_p90", "grad_norm_max"),
    "step": ("loss", "grad_norm", "lr"),
}


def non_finite_values(ctx: Context) -> dict[str, dict]:
    """``{"<level>.<column>": {"count", "first_epoch" or "first_step", "value"}}`` per column
    holding NaN or inf (``value`` is the first such float), plus ``"step.stopped_at"`` where
    nbtrain's trainer stopped a diverged run (``meta["non_finite_step"]``)."""
    bad: dict[str, dict] = {}
    for level, names in COLUMNS.items():
        rows = ctx.data.epochs if level == "epoch" else ctx.data.steps
        for name in names:
            values = ctx.data.col(name, level)
            if values is None:
                continue
            idx = np.flatnonzero(~np.isfinite(values))
            if len(idx):
                at = int(rows[level].iloc[idx[0]]) if level in rows.columns else int(idx[0])
                bad[f"{level}.{name}"] = {"count": len(idx), f"first_{level}": at, "value": float(values[idx[0]])}
    stopped = ctx.data.meta.get("non_finite_step")
    if stopped:
        value = stopped["loss"] if not math.isfinite(stopped["loss"]) else stopped["grad_norm"]
        bad["step.stopped_at"] = {"count": 1, "first_step": int(stopped["step"]), "value": float(value)}
    return bad


def _describe(name: str, v: dict) -> str:
    column, level = name.split(".")[1], name.split(".")[0]
    where = "epoch" if "first_epoch" in v else "step"
    return (f"{column} ({level} rows): {v['count']} non-finite, first {v['value']!r} at "
            f"{where} {v.get('first_epoch', v.get('first_step'))}")


def check_non_finite(ctx: Context) -> None:
    bad = non_finite_values(ctx)
    if not bad:
        return
    ctx.add(Finding(
        code=NON_FINITE,
        severity="critical",
        title="Non-finite values",
        problem=f"The log holds NaN or infinite values in {len(bad)} column(s).",
        evidence=bad,
        evidence_text=[_describe(name, v) for name, v in bad.items()],
        explanation="A NaN or inf loss or gradient norm means the run diverged (or the data holds NaN/inf); "
        "every step after it is meaningless, and an infinite pre-clip norm turns the clipped gradient into NaN.",
        suggestion="Restart from the last finite checkpoint with a lower LR; check the inputs and targets for "
        "NaN/inf and extreme scales (normalization).",
        rationale="Divergence usually follows a step that was too large for the local curvature; a lower LR "
        "and normalized data shrink such steps.",
        monitor="Every loss and gradient norm finite; the largest pre-clip norm per epoch not rising.",
    ))


__all__ = ["check_non_finite", "non_finite_values"]
