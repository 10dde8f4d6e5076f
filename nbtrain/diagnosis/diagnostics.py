"""Automatic findings on a finished (or running) training log: ``diagnose``.

``diagnose(history, config)`` reads a History (or a DataFrame of epoch rows, a dict
``{"epochs": df, "steps": df}``, or a path to a log) and returns a :class:`Diagnosis`: a
list of :class:`Finding` s, each with a stable ``code``, numbers taken from the log, a
plain explanation and a suggested fix. What it could not check (missing columns, too few
evaluation points, a check that failed on this log) is listed in ``Diagnosis.not_checked``;
what it had to assume (no config given, the schedule read from the LR) in
``Diagnosis.assumptions``. Nothing here touches a live trainer.

The checks live in ``nbtrain.diagnosis.checks``, one module per topic; ``CHECKS`` is the
order they run in (and the order of the report's findings). Each runs guarded: an error
inside one becomes a "Not checked" line naming it, and the others still run. The checks in
``STEP_CHECKS`` read step rows only and run on logs without evaluation points too.
"""

from __future__ import annotations

from typing import Any, Callable

from .alternatives import apply_alternatives, config_fields
from .checks.clipping import check_clipping
from .checks.context import Context
from .checks.gradients import check_gradients
from .checks.losses import check_train_plateau, check_validation
from .checks.non_finite import check_non_finite
from .checks.scheduler import check_scheduler
from .checks.spikes import check_gradient_spikes, check_loss_spikes
from .checks.zero_gradients import check_zero_gradients
from .findings import (
    GRADIENT_GROWTH,
    GRADIENT_SPIKES,
    HEAVY_CLIPPING,
    LOSS_SPIKES,
    LR_NOT_ADAPTING,
    NON_FINITE,
    OVERFITTING,
    RUN_TOO_SHORT_FOR_PATIENCE,
    SCHEDULER_MISMATCH,
    TRAIN_LOSS_PLATEAU,
    VAL_FLUCTUATING,
    ZERO_GRADIENTS,
    Diagnosis,
)
from .run_data import as_run_data
from .settings import resolve_settings
from .summary import summarize

CHECKS = (check_non_finite, check_zero_gradients, check_scheduler, check_gradients, check_gradient_spikes,
          check_clipping, check_validation, check_train_plateau, check_loss_spikes)
STEP_CHECKS = (check_non_finite, check_zero_gradients, check_gradient_spikes, check_loss_spikes)
# the codes each check can report (named when it fails)
CHECK_CODES: dict[Callable, tuple[str, ...]] = {
    check_non_finite: (NON_FINITE,),
    check_zero_gradients: (ZERO_GRADIENTS,),
    check_scheduler: (LR_NOT_ADAPTING, RUN_TOO_SHORT_FOR_PATIENCE, SCHEDULER_MISMATCH),
    check_gradients: (GRADIENT_GROWTH,),
    check_gradient_spikes: (GRADIENT_SPIKES,),
    check_clipping: (HEAVY_CLIPPING,),
    check_validation: (OVERFITTING, VAL_FLUCTUATING),
    check_train_plateau: (TRAIN_LOSS_PLATEAU,),
    check_loss_spikes: (LOSS_SPIKES,),
}


def run_check(ctx: Context, check: Callable[[Context], None]) -> None:
    """Run one check; an exception becomes a "Not checked" line naming the check and the error."""
    n_findings = len(ctx.findings)
    try:
        check(ctx)
    except Exception as exc:  # noqa: BLE001 - a readable log never crashes the diagnosis
        del ctx.findings[n_findings:]
        codes = ", ".join(CHECK_CODES.get(check, ()))
        ctx.skip(f"{check.__name__} failed on this log ({type(exc).__name__}: {exc}): {codes or 'its findings'} "
                 "not checked")


def diagnose(history: Any, config: Any = None, tried: Any = None) -> Diagnosis:
    """Diagnose a training log.

    ``history``: a History, a DataFrame of epoch rows, ``{"epochs": df, "steps": df}``, or a
    path to a log (``nbtrain.read_log`` reads it). ``config``: a TrainConfig or a dict of
    its fields; None uses the history's stored config, or infers what it can (and says so
    in ``Diagnosis.assumptions``). ``tried``: alternatives already measured on the same
    problem (run folders, runs, ``(label, history)`` pairs or a sweep table; see
    ``nbtrain.diagnosis.alternatives``): a suggested change that one of them measured uses
    its result, and a change that measured no better is not suggested.
    """
    data = as_run_data(history)
    settings, assumptions = resolve_settings(config, data)
    fields = config_fields(config, data.meta.get("config"), settings)
    ctx = Context(data, settings, config=fields)
    if data.n_epochs == 0 and data.steps is None:
        ctx.skip("no epoch rows: nothing to diagnose")
    else:
        if data.n_epochs == 0:
            ctx.skip("no evaluation rows (epoch ends or evaluations): only the step-level checks ran")
        for check in CHECKS:
            if data.n_epochs or check in STEP_CHECKS:
                run_check(ctx, check)
    diagnosis = Diagnosis(
        findings=ctx.findings,
        not_checked=data.notes + ctx.not_checked,
        assumptions=assumptions,
        settings=settings.to_dict(),
    )
    if tried is not None:
        apply_alternatives(diagnosis, tried, fields, summarize(data, config)["best_val_loss"])
    return diagnosis


__all__ = ["CHECKS", "CHECK_CODES", "STEP_CHECKS", "diagnose", "run_check"]
