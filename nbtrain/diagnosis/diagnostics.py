"""Automatic findings on a finished (or running) training log: ``diagnose``.

``diagnose(history, config)`` reads a History (or a DataFrame of epoch rows, or a dict
``{"epochs": df, "steps": df}``) and returns a :class:`Diagnosis`: a list of
:class:`Finding` s, each with a stable ``code``, numbers taken from the log, a plain
explanation and a suggested fix. What it could not check (missing columns, too few
epochs) is listed in ``Diagnosis.not_checked``; what it had to assume (no config given)
in ``Diagnosis.assumptions``. Nothing here touches a live trainer.

The checks live in ``nbtrain.diagnosis.checks``, one module per topic; ``CHECKS`` is the
order they run in (and the order of the report's findings).
"""

from __future__ import annotations

from typing import Any

from .checks.clipping import check_clipping
from .checks.context import Context
from .checks.gradients import check_gradients
from .checks.losses import check_train_plateau, check_validation
from .checks.non_finite import check_non_finite
from .checks.scheduler import check_scheduler
from .findings import Diagnosis
from .run_data import as_run_data
from .settings import resolve_settings

CHECKS = (check_non_finite, check_scheduler, check_gradients, check_clipping, check_validation, check_train_plateau)


def diagnose(history: Any, config: Any = None) -> Diagnosis:
    """Diagnose a training log.

    ``history``: a History, a DataFrame of epoch rows, or ``{"epochs": df, "steps": df}``.
    ``config``: a TrainConfig or a dict of its fields; None uses the history's stored
    config, or infers what it can (and says so in ``Diagnosis.assumptions``).
    """
    data = as_run_data(history)
    settings, assumptions = resolve_settings(config, data)
    ctx = Context(data, settings)
    if data.n_epochs == 0:
        ctx.skip("no epoch rows: nothing to diagnose")
    else:
        for check in CHECKS:
            check(ctx)
    return Diagnosis(
        findings=ctx.findings,
        not_checked=data.notes + ctx.not_checked,
        assumptions=assumptions,
        settings=settings.to_dict(),
    )


__all__ = ["CHECKS", "diagnose"]
