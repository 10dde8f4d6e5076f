"""The plateau scheduler: SCHEDULER_MISMATCH, LR_NOT_ADAPTING, RUN_TOO_SHORT_FOR_PATIENCE.

They run only when the run used a plateau scheduler: its config says so, or its logged cuts
show one (``schedule.infer_schedule``); never on warmup/decay, cosine or one-cycle
schedules, and with no config and no logged LR they are listed as not checked. All three
replay the scheduler on the logged validation losses: torch's ``ReduceLROnPlateau``
(``plateau.plateau_state`` / ``simulate_plateau`` with ``Settings.plateau_kwargs()``), or
Keras's (``keras_plateau_cuts``) when the log's cuts follow Keras's rule. The mismatch is
decided first: when the logged LR is not what the scheduler gives, LR_NOT_ADAPTING does not
claim the scheduler worked as specified.
"""

from __future__ import annotations

import math

from ... import measures
from ..findings import RUN_TOO_SHORT_FOR_PATIENCE, SCHEDULER_MISMATCH, Finding
from ..formatting import join, lr_text
from ..plateau import PlateauState, keras_plateau_cuts, plateau_state, simulate_plateau
from ..schedule import plateau_skip
from .advice import compose, lower_patience, more_epochs
from .context import Context
from .lr_adaptation import MIN_STALL_EPOCHS, not_adapting


def check_scheduler(ctx: Context) -> None:
    if not measures.uses_plateau(ctx.s):
        if ctx.s.scheduler_inferred or ctx.s.scheduler is None:
            ctx.skip(plateau_skip(ctx.s.scheduler))
        else:
            ctx.skip(f"scheduler is {ctx.s.scheduler}: LR-adaptation checks (ReduceLROnPlateau) not run")
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
    ctx.add(not_adapting(ctx, state, mismatched=mismatch is not None))
    ctx.add(_too_short(ctx, state))
    ctx.add(mismatch)


def expected_lrs(ctx: Context, lr: float) -> list[float]:
    """The LR in force after each point's scheduler step, replayed with the run's settings and rule."""
    s = ctx.s
    if s.semantics != "keras":
        return simulate_plateau(ctx.val, lr, **s.plateau_kwargs())
    cuts, out, current = set(keras_plateau_cuts(ctx.val, s.patience, s.threshold, s.cooldown)), [], lr
    for i in range(len(ctx.val)):
        if i in cuts:
            current = max(current * s.factor, s.min_lr)
        out.append(current)
    return out


def _scheduler_name(ctx: Context) -> str:
    return "Keras's ReduceLROnPlateau" if ctx.s.semantics == "keras" else "ReduceLROnPlateau"


# -- SCHEDULER_MISMATCH --------------------------------------------------------------------
def _mismatch(ctx: Context, lr: float) -> Finding | None:
    """The first point whose logged LR differs from the replayed one, as a finding."""
    if ctx.observed_lr is None or ctx.s.lr is None:
        return None
    expected = expected_lrs(ctx, lr)
    if ctx.s.lr_logged == "during":  # the LR logged with each point is the one before its scheduler step
        expected = [lr] + expected[:-1]
    logged = ctx.data.logged("lr")  # a value derived for a point the log has no LR after is not compared
    for i, (got, want) in enumerate(zip(ctx.observed_lr, expected)):
        if logged[i] and math.isfinite(got) and not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
            break
    else:
        return None
    e, s, u = ctx.epochs[i], ctx.s, ctx.u
    return Finding(
        code=SCHEDULER_MISMATCH,
        severity="info" if s.source == "inferred" or s.scheduler_inferred else "warning",
        title="Logged LR differs from ReduceLROnPlateau",
        problem=f"After {u.at(e)} the log shows LR {lr_text(got)}, but {_scheduler_name(ctx)} with these settings "
        f"gives {lr_text(want)}.",
        evidence={"epoch": e, "logged_lr": got, "expected_lr": want, "patience": s.patience,
                  "factor": s.factor, "threshold": s.threshold},
        evidence_text=[
            f"logged LR per {u.noun}: {join(ctx.observed_lr, lr_text)}",
            f"simulated LR per {u.noun}: {join(expected, lr_text)}",
        ],
        explanation="Either the settings used for this check are not the run's (config missing or different), or "
        "something else changed the LR (another scheduler, manual changes, a resume with a different config).",
        suggestion="Pass the run's exact config to diagnose(), or find what else set the LR.",
        rationale="The LR-adaptation findings are only as right as the settings they replay.",
        monitor="The logged LR equals `nbtrain.simulate_plateau` on the logged validation losses.",
    )


# -- RUN_TOO_SHORT_FOR_PATIENCE ----------------------------------------------------------------
def _too_short(ctx: Context, st: PlateauState) -> Finding | None:
    n, p, u = ctx.data.n_epochs, ctx.s.patience, ctx.u
    keras = ctx.s.semantics == "keras"
    needed = p + 1 if keras else p + 2  # Keras cuts when its counter reaches patience, torch when it exceeds it
    if n >= needed or st.num_bad_epochs < 1:
        return None  # long enough, or the validation loss is still improving: nothing to cut for
    rule = "reach" if keras else "exceed"
    suggestion, changes = compose(
        more_epochs(ctx, f"Train at least {needed} {u.nouns}.", needed),
        lower_patience(ctx, f"Or lower the patience (patience k cuts after {'k' if keras else 'k+1'} {u.nouns} "
                            "without improvement)."),
    )
    return Finding(
        code=RUN_TOO_SHORT_FOR_PATIENCE,
        severity="warning",
        title="Run too short for the scheduler's patience",
        problem=f"The run has {n} {u.nouns} ({u.names(ctx.epochs)}); with patience {p} {_scheduler_name(ctx)} cannot "
        f"cut the LR before {u.end_of_future(needed - 1)}, so it could never have cut in this run.",
        evidence={"epochs_run": n, "patience": p, "epochs_needed": needed, "earliest_cut_epoch": u.future(needed - 1)},
        evidence_text=[
            f"{n} {u.nouns} run; the first {u.noun} always sets the best, and a cut needs {needed - 1} non-improving "
            f"{u.nouns} after it (the counter must {rule} patience {p}), so at least {needed} {u.nouns}.",
        ],
        explanation="An unchanged LR here says nothing about whether the scheduler works: it never had the "
        "chance to act.",
        suggestion=suggestion,
        changes=changes,
        rationale="The scheduler can only help within the run's length.",
        monitor=f"Compare the {u.noun} of each logged cut with `nbtrain.simulate_plateau` on the same losses.",
    )


__all__ = ["MIN_STALL_EPOCHS", "check_scheduler", "expected_lrs"]
