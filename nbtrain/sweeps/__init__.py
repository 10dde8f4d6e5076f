"""Sweeps: grids of runs over config fields and seeds, on a process pool or Ray, and their plots.

- ``plan``: the trials of a grid x seeds and their run folders (``Trial``, ``config_label``);
- ``trial``: one trial in a worker process, and its ``done.json`` record (keyed by config,
  model/data functions and code fingerprint);
- ``backends``: where trials run (``"local"`` process pool, ``"ray"``); add a backend there;
- ``runner``: ``sweep`` and ``load_sweep``, the results table;
- ``command``: the ``nbtrain sweep CONFIG.json`` command line;
- ``plots``: ``sweep_heatmap`` and ``sweep_curves``.
"""
