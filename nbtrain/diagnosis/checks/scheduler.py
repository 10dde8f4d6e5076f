"""The plateau scheduler: SCHEDULER_MISMATCH, LR_NOT_ADAPTING, RUN_TOO_SHORT_FOR_PATIENCE.

All three replay torch's ``ReduceLROnPlateau`` on the logged validation losses
(``plateau.plateau_state`` / ``simulate_plateau`` with ``Settings.plateau_kwargs()``).
The mismatch is decided first: when the logged LR is not what the scheduler gives,
LR_NOT_ADAPTING does not claim the scheduler worked as specified.
"""

from __future__ import annotations

import math

from ... import measures
from ..findings import LR_NOT_ADAPTING, RUN_TOO_SHORT_FOR_PATIENCE, SCHEDULER_MISMATCH, Finding
from ..formatting import and_list, epoch_span, join, lr_text, num
from ..plateau import PlateauState, plateau_state, simulate_plateau
from .context import Context

MIN_STALL_EPOCHS = 2  # LR_NOT_ADAPTING (and VAL_FLUCTUATING): epochs past the best


def check_scheduler(ctx: Context) -> None:
    if not measures.uses_plateau(ctx.s):
        what = ctx.s.scheduler or "unknown (not ReduceLROnPlateau)"
        ctx.skip(f"scheduler is {what}: LR-adaptation checks (ReduceLROnPlateau) not run")
        return
    if ctx.val is None:
        ctx.skip("no val_loss column: LR adaptation and validation checks not run")
        return
    lr = ctx.s.lr if ctx.s.lr is not None else 1.0
    if ctx.s.lr is None:
        ctx.skip("initial LR unknown: LR values not checked (cut epochs still are)")
    state = plateau_state(ctx.val, lr, **ctx.s.plateau_kwargs())
    if ctx.observed_lr is None:
        ctx.skip("no lr column: the LR actually used is unknown; torch's behaviour was simulated instead")
    mismatch = _mismatch(ctx, lr)
    ctx.add(_not_adapting(ctx, state, mismatched=mismatch is not None))
    ctx.add(_too_short(ctx, state))
    ctx.add(mismatch)


# -- SCHEDULER_MISMATCH --------------------------------------------------------------------
def _mismatch(ctx: Context, lr: float) -> Finding | None:
    """The first epoch whose logged LR differs from the simulated one, as a finding."""
    if ctx.observed_lr is None or ctx.s.lr is None:
        return None
    expected = simulate_plateau(ctx.val, lr, **ctx.s.plateau_kwargs())
    for i, (got, want) in enumerate(zip(ctx.observed_lr, expected)):
        if math.isfinite(got) and not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
            break
    else:
        return None
    e, s = ctx.epochs[i], ctx.s
    return Finding(
        code=SCHEDULER_MISMATCH,
        severity="warning" if s.source != "inferred" else "info",
        title="Logged LR differs from ReduceLROnPlateau",
        problem=f"After epoch {e} the log shows LR {lr_text(got)}, but ReduceLROnPlateau with these settings "
        f"gives {lr_text(want)}.",
        evidence={"epoch": e, "logged_lr": got, "expected_lr": want, "patience": s.patience,
                  "factor": s.factor, "threshold": s.threshold},
        evidence_text=[
            f"logged LR per epoch: {join(ctx.observed_lr, lr_text)}",
            f"simulated LR per epoch: {join(expected, lr_text)}",
        ],
        explanation="Either the settings used for this check are not the run's (config missing or different), or "
        "something else changed the LR (another scheduler, manual changes, a resume with a different config).",
        suggestion="Pass the run's exact config to diagnose(), or find what else set the LR.",
        rationale="The LR-adaptation findings are only as right as the settings they replay.",
        monitor="The logged LR equals `nbtrain.simulate_plateau` on the logged validation losses.",
    )


# -- RUN_TOO_SHORT_FOR_PATIENCE ----------------------------------------------------------------
def _too_short(ctx: Context, st: PlateauState) -> Finding | None:
    n, p = ctx.data.n_epochs, ctx.s.patience
    if n >= p + 2 or st.num_bad_epochs < 1:
        return None  # long enough, or the validation loss is still improving: nothing to cut for
    return Finding(
        code=RUN_TOO_SHORT_FOR_PATIENCE,
        severity="warning",
        title="Run too short for the scheduler's patience",
        problem=f"The run has {n} epochs ({epoch_span(ctx.epochs)}); with patience {p} ReduceLROnPlateau cannot "
        f"cut the LR before the end of epoch {p + 1}, so it could never have cut in this run.",
        evidence={"epochs_run": n, "patience": p, "epochs_needed": p + 2, "earliest_cut_epoch": p + 1},
        evidence_text=[
            f"{n} epochs run; the first epoch always sets the best, and a cut needs {p + 1} non-improving "
            f"epochs after it (the counter must exceed patience {p}), so at least {p + 2} epochs.",
        ],
        explanation="An unchanged LR here says nothing about whether the scheduler works: it never had the "
        "chance to act.",
        suggestion=f"Train at least {p + 2} epochs, or lower the patience (patience k cuts after k+1 epochs "
        "without improvement).",
        rationale="The scheduler can only help within the run's length.",
        monitor="Compare the epoch of each logged cut with `nbtrain.simulate_plateau` on the same losses.",
    )


# -- LR_NOT_ADAPTING -------------------------------------------------------------------------
def _not_adapting(ctx: Context, st: PlateauState, mismatched: bool) -> Finding | None:
    if st.best_epoch is None:
        return None
    cuts = ctx.cut_epochs()
    if cuts is None:  # no lr column: the simulated cuts stand in
        cuts = [ctx.epochs[i] for i, _, _ in st.cuts]
    e_best = ctx.epochs[st.best_epoch]
    if st.epochs_since_best < MIN_STALL_EPOCHS or any(c > e_best for c in cuts):
        return None
    lr_now = float(ctx.observed_lr[-1]) if ctx.observed_lr is not None else st.lr
    lr_span = (f"for all {ctx.data.n_epochs} epochs ({epoch_span(ctx.epochs)})" if not cuts
               else f"since the cut at epoch {cuts[-1]}")
    after = list(range(st.best_epoch + 1, len(ctx.val)))
    prev_not_best = [ctx.epochs[i] for i in after if ctx.val[i] < ctx.val[i - 1]]
    thr, next_cut = st.improvement_threshold, st.next_cut_epoch
    return Finding(
        code=LR_NOT_ADAPTING,
        severity="warning",
        title="Learning rate not adapting",
        problem=f"LR stayed at {lr_text(lr_now)} {lr_span} although the validation loss has not beaten its best "
        f"({num(st.best)}, epoch {e_best}) for {st.epochs_since_best} epochs.",
        evidence={
            "lr": lr_now, "patience": ctx.s.patience, "threshold": ctx.s.threshold, "best": st.best,
            "best_epoch": e_best, "improvement_threshold": thr, "num_bad_epochs": st.num_bad_epochs,
            "epochs_since_best": st.epochs_since_best, "improved_on_previous_not_best": prev_not_best,
            "next_cut_epoch": next_cut, "keras_cut_epoch": st.keras_cut_epoch, "observed_cuts": cuts,
            "scheduler_mismatch": mismatched,
        },
        evidence_text=_stall_text(ctx, st, lr_now, lr_span, after, prev_not_best),
        explanation=_not_adapting_explanation(st, mismatched),
        suggestion=f"Lower the patience or train longer. {_patience_hint(ctx)}",
        rationale="A shorter patience reacts sooner to a stalled validation loss; logging every cut "
        "(`Learning rate reduced: X -> Y (validation loss: Z)`) makes the scheduler's actions visible.",
        monitor=(f"An LR cut at the end of epoch {next_cut} unless an epoch's validation loss drops below "
                 f"{num(thr)} first." if next_cut is not None else "The validation loss at the LR floor."),
    )


def _stall_text(ctx: Context, st: PlateauState, lr_now: float, lr_span: str, after: list[int],
                prev_not_best: list[int]) -> list[str]:
    thr, p, next_cut, keras = st.improvement_threshold, ctx.s.patience, st.next_cut_epoch, st.keras_cut_epoch
    text = [
        f"LR stayed at {lr_text(lr_now)} {lr_span}.",
        f"Best validation loss {num(st.best)} at epoch {ctx.epochs[st.best_epoch]}; to count as an improvement an "
        f"epoch must be below {num(st.best)} × (1 − {ctx.s.threshold:g}) = {num(thr)}.",
        f"{st.epochs_since_best} epochs in a row ({epoch_span([ctx.epochs[i] for i in after])}) have not improved on "
        f"it: val loss {join(ctx.val[st.best_epoch + 1:], num)}; the bad-epoch counter is {st.num_bad_epochs}, and "
        f"the LR is cut only when it exceeds the patience ({p}).",
    ]
    if prev_not_best:
        many = len(prev_not_best) > 1
        text.append(
            f"Epoch{'s' if many else ''} {and_list([str(e) for e in prev_not_best])} improved on the previous epoch "
            f"but not on the best ({num(thr)}): in the scheduler's eyes {'they are' if many else 'it is'} "
            "bad epochs, not progress."
        )
    if next_cut is not None:
        new_lr = max(lr_now * ctx.s.factor, ctx.s.min_lr)
        text.append(f"If nothing improves, the first cut comes at the end of epoch {next_cut} "
                    f"(LR {lr_text(lr_now)} → {lr_text(new_lr)}).")
    else:
        text.append(f"The LR is at its floor (min_lr {ctx.s.min_lr:g}): no further cut is possible.")
    if keras is not None and next_cut is not None and keras < next_cut:
        text.append(f"Keras's ReduceLROnPlateau (cuts when its wait counter reaches patience) would cut at the end "
                    f"of epoch {keras}, one epoch earlier.")
    return text


def _not_adapting_explanation(st: PlateauState, mismatched: bool) -> str:
    rule = ("ReduceLROnPlateau compares each epoch with the best value so far, not with the previous epoch: an "
            f"epoch counts as better only below best × (1 − threshold) = {num(st.improvement_threshold)}. The "
            "bad-epoch counter resets only on such an improvement, and the LR drops on the (patience+1)-th bad "
            "epoch in a row.")
    if mismatched:
        return (rule + " The logged LR does not follow these settings (see the scheduler-mismatch finding), so "
                "this log cannot show whether the scheduler worked as specified; replayed with these settings, "
                + ("it would not have cut yet." if st.next_cut_epoch is not None else "the LR is at its floor."))
    return (rule + " The scheduler is working as specified: "
            + ("it has simply not reached its cut yet." if st.next_cut_epoch is not None
               else "the LR is already at its floor."))


def _patience_hint(ctx: Context) -> str:
    """The largest patience below the configured one that would have cut within this run."""
    kwargs = ctx.s.plateau_kwargs()
    for q in range(ctx.s.patience - 1, -1, -1):
        lrs = simulate_plateau(ctx.val, 1.0, **{**kwargs, "patience": q})
        if lrs[-1] < 1.0:
            cut_at = ctx.epochs[next(i for i, v in enumerate(lrs) if v < 1.0)]
            return f"Patience {q} would have cut the LR at the end of epoch {cut_at} of this run."
    return "No patience value would have cut the LR within this run."


__all__ = ["MIN_STALL_EPOCHS", "check_scheduler"]
