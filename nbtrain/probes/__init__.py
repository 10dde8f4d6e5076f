"""Probes: short measurements on a model that say which learning rate and batch size it can take.

One module per probe, each with its result type:

- ``lr_range``: ``lr_range_test`` sweeps the LR exponentially with a probe batch (``LRRangeResult``); its rules
  in ``lr_rules``; ``lr_check``: ``check_lr_suggestion`` confirms a suggestion by short trainings (``LRCheck``);
- ``noise_scale``: ``gradient_noise_scale``, B_simple = tr(Sigma) / |G|^2 (``NoiseScaleResult``);
- ``sharpness``: ``estimate_sharpness``, the top Hessian eigenvalue (and Adam's preconditioned
  one) against the step size's ``stability_threshold`` (``SharpnessResult``);
- ``layers``: the ``LayerStats`` callback and ``layer_stats_dataframe``;
- ``findings``: ``probe_findings`` and the builders of LR_ABOVE_STABLE_RANGE,
  BATCH_BELOW_NOISE_SCALE and LAYER_DOMINATES_GRADIENT;
- ``_common``: argument checks, examples and batches, and ``restoring``.

Every probe restores what it touches (parameters, buffers, ``.grad``, train/eval mode,
optimizer state, the torch RNG), so a run after a probe is the run without it, bit for bit.
The public names are exported from ``nbtrain`` itself.
"""
