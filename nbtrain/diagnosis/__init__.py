"""Diagnosis: findings on a log, the plateau simulator, expectations, symptoms, summaries.

Reads a History (or a log in the same shape, or a path that ``nbtrain.logs.read_log``
reads); never imports the trainer or the views.

- ``run_data``: any log as DataFrames (``as_run_data``), with the run measurements of
  ``nbtrain.measures`` as methods (``lr_cuts``, ``clip_fraction``, ``growth``, ``largest_norm``);
  ``frames`` defines which cells were logged, the evaluation points and their step windows;
  ``units`` names the points in the run's own units ("epoch 3", "the evaluation at step 2,000");
- ``schedule``: the LR schedule read from the logged LR (``lr_shapes`` classifies the curve);
- ``settings``: the LR, scheduler and clip settings a check needs, from the config or inferred;
- ``findings``: finding codes, ``Finding`` and the ``Diagnosis`` report;
- ``diagnostics``: ``diagnose``, which runs the checks of ``checks/`` (one module per topic), each guarded;
- ``plateau``: torch's ReduceLROnPlateau, replayed (``simulate_plateau``, ``plateau_state``), and
  Keras's cut epochs (``keras_plateau_cuts``);
- ``expectations``: ``check_expectations`` over ``monitoring`` (one run) and ``baseline``
  (against another run), with ``verdicts`` as its result type;
- ``symptoms``: the round-1 symptoms (``round1_symptoms``); ``summary``: ``summarize``;
- ``formatting``: numbers and lists as report text.
"""
