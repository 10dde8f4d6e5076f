"""Settings for the notebooks when pytest (nbval) executes them.

The kernels inherit this process's environment, so these variables reach the notebooks:
- NBTRAIN_RUNS: one run cache for all notebooks of a test session (01 trains round 1, 02 and 04
  reuse it), inside the repository's ignored runs/ folder unless already set.
- NBTRAIN_FAST=1: the notebooks that offer a smaller CI-sized configuration (06, the sweep) use it.
  Notebooks 01, 02 and 04 always run the full 7-epoch experiments.
- MPLBACKEND is left alone: the kernels use the inline backend.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("NBTRAIN_RUNS", str(ROOT / "runs" / "notebooks"))
os.environ.setdefault("NBTRAIN_FAST", "1")
