"""The checks ``diagnose`` runs, one module per topic.

Each check is a function ``check(ctx)`` that reads the log through its :class:`Context`
(``context``) and adds :class:`~nbtrain.diagnosis.findings.Finding` s with ``ctx.add`` or
notes what it could not check with ``ctx.skip``:

- ``non_finite``: NON_FINITE;
- ``scheduler``: the plateau scheduler (SCHEDULER_MISMATCH, LR_NOT_ADAPTING, RUN_TOO_SHORT_FOR_PATIENCE);
- ``gradients``: GRADIENT_GROWTH;
- ``clipping``: HEAVY_CLIPPING (and the clip numbers the gradient check quotes);
- ``losses``: VAL_FLUCTUATING, OVERFITTING, TRAIN_LOSS_PLATEAU.

To add a finding: give it a code in ``findings.py`` (``CODES``), write its check in the
module of its topic (or a new one), and add it to ``diagnostics.CHECKS``.
"""
