"""Diagnosis: findings on a log, the plateau simulator, expectations, symptoms, summaries.

Reads a History (or a log in the same shape); never imports the trainer or the views.

- ``run_data``: any log as DataFrames (``as_run_data``), with the run measurements of
  ``nbtrain.measures`` as methods (``lr_cuts``, ``clip_fraction``, ``growth``, ``largest_norm``);
- ``settings``: the LR, scheduler and clip settings a check needs, from the config or inferred;
- ``findings``: finding codes, ``Finding`` and the ``Diagnosis`` report;
- ``diagnostics``: ``diagnose``, which runs the checks of ``checks/`` (one module per topic);
- ``plateau``: torch's ReduceLROnPlateau, replayed (``simulate_plateau``, ``plateau_state``);
- ``expectations``: ``check_expectations`` over ``monitoring`` (one run) and ``baseline``
  (against another run), with ``verdicts`` as its result type;
- ``symptoms``: the round-1 symptoms (``round1_symptoms``); ``summary``: ``summarize``;
- ``formatting``: numbers and lists as report text.
"""
