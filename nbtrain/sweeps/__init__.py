"""Sweeps: grids of runs over config fields and seeds, on a process pool or Ray, and their plots.

- ``plan``: the trials of a grid x seeds and their run folders (``Trial``, ``config_label``);
- ``trial``: one trial in a worker process, and its ``done.json`` record (keyed by config,
  model/data functions and code fingerprint);
- ``placement``: which trials use CUDA, the local backend's GPU slots (one worker per GPU)
  and the Ray resources of each trial (``num_gpus=1`` on CUDA);
- ``backends``: where trials run (``"local"`` process pool, ``"ray"``); add a backend there;
- ``pool`` and ``worker``: the local pool's worker processes (``python -m nbtrain.sweeps.worker``,
  never the caller's ``__main__``) and how a dead worker's cause is reported;
- ``many``: ``train_many``, independent runs of the reference experiment side by side;
- ``runner``: ``sweep`` and ``load_sweep``, the results table;
- ``command``: the ``nbtrain sweep CONFIG.json`` command line;
- ``plots``: ``sweep_heatmap`` and ``sweep_curves``.
"""
