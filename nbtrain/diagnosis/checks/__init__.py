"""The checks ``diagnose`` runs, one module per topic.

Each check is a function ``check(ctx)`` that reads the log through its :class:`Context`
(``context``) and adds :class:`~nbtrain.diagnosis.findings.Finding` s with ``ctx.add`` or
notes what it could not check with ``ctx.skip``; texts name evaluation points with
``ctx.u`` (``units``):

- ``non_finite``: NON_FINITE (divergence, or the loss scaler's skipped steps);
- ``zero_gradients``: ZERO_GRADIENTS;
- ``scheduler``: the plateau scheduler (SCHEDULER_MISMATCH, RUN_TOO_SHORT_FOR_PATIENCE, and
  LR_NOT_ADAPTING from ``lr_adaptation``), only for plateau schedulers;
- ``gradients``: GRADIENT_GROWTH;
- ``spikes``: GRADIENT_SPIKES, LOSS_SPIKES;
- ``clipping``: HEAVY_CLIPPING (and the clip numbers the gradient check quotes);
- ``losses``: VAL_FLUCTUATING, OVERFITTING, TRAIN_LOSS_PLATEAU.

Texts are generated from the measured numbers (a share is quoted as measured, "30% ... (52% in
the last epoch)", never a word that rounds it up); a suggestion that names a config change
builds it with ``advice`` (a ``Change`` carrying its sentence), so that ``diagnose(...,
tried=...)`` can replace it with what an alternative already measured.

To add a finding: give it a code in ``findings.py`` (``CODES``), write its check in the
module of its topic (or a new one), and add it to ``diagnostics.CHECKS`` and
``diagnostics.CHECK_CODES`` (and ``STEP_CHECKS`` when it reads step rows only).
"""
