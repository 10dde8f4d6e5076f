"""The plan of a sweep: which trials a grid and a list of seeds make, and where each one runs.

A *trial* is one (grid point, seed). Its run folder is ``OUT/<config_label>/seed=<seed>``,
where ``config_label`` names the grid point with the short names of ``SHORT_NAMES``
(``lr=2e-05_clip=2.0_pat=5``). Nothing here trains or imports torch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..training.config import TrainConfig

# Short names for the usual grid axes in folder names and plot titles; other fields keep their own name.
SHORT_NAMES = {
    "lr": "lr",
    "grad_clip": "clip",
    "scheduler_patience": "pat",
    "batch_size": "bs",
    "grad_accum_steps": "accum",
    "scheduler": "sched",
    "weight_decay": "wd",
}

ModelFn = Callable[[int], Any]
DataFn = Callable[[int], tuple]


@dataclass(frozen=True)
class Trial:
    """One (grid point, seed): the values to set on the base config and where it runs."""

    params: dict  # grid field -> value, in grid order
    seed: int
    run_dir: str
    base: dict  # the base config as a dict (picklable, JSON-safe)
    code: str | None = None  # the code fingerprint the sweep reads back and records; None: the worker's own


def _format_value(value: Any) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    return "".join(ch if ch.isalnum() or ch in "-+._" else "-" for ch in text)


def config_label(params: Mapping[str, Any]) -> str:
    """Folder name of a grid point: ``lr=2e-05_clip=2.0_pat=5`` (``"base"`` for an empty grid)."""
    if not params:
        return "base"
    return "_".join(f"{SHORT_NAMES.get(k, k)}={_format_value(v)}" for k, v in params.items())


def _check_axis(key: str, values: Any, fields: set) -> list:
    if key == "seed":
        raise ValueError("grid must not contain 'seed': pass the seeds as seeds=[...]")
    if key not in fields:
        raise ValueError(
            f"grid key {key!r} is not a TrainConfig field; choose from: {', '.join(sorted(fields - {'seed'}))}"
        )
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"grid[{key!r}] must be a list of values, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"grid[{key!r}] is empty: give at least one value")
    labels = [_format_value(v) for v in values]
    if len(set(labels)) != len(labels):
        raise ValueError(f"grid[{key!r}] has repeated values: {values!r}")
    return values


def check_grid(grid: Any) -> dict[str, list]:
    """``grid`` as ``{TrainConfig field: [values]}``; raises on unknown fields, empty or repeated values."""
    if grid is None:
        return {}
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict of TrainConfig field -> list of values, got {type(grid).__name__}")
    fields = set(TrainConfig.__dataclass_fields__)
    return {key: _check_axis(key, values, fields) for key, values in grid.items()}


def check_seeds(seeds: Any) -> list[int]:
    """``seeds`` as a list of distinct ints >= 0 (at least one)."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a list of ints, got {seeds!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed, e.g. seeds=[0]")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seeds must be ints >= 0, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds has repeated values: {seeds!r}")
    return seeds


def plan(base_config: TrainConfig, grid: Mapping[str, Sequence] | None, seeds: Sequence[int], out,
         code: str | None = None) -> list[Trial]:
    """The trials of a sweep, grid-point major and seed minor (nothing is run).

    ``code``: the code fingerprint the trials record in ``done.json`` (``sweep`` passes its
    own, so that what it reads back and what its workers record agree).
    """
    if not isinstance(base_config, TrainConfig):
        raise TypeError(f"base_config must be a TrainConfig, got {type(base_config).__name__}")
    grid = check_grid(grid)
    seeds = check_seeds(seeds)
    out = Path(out)
    base = base_config.to_dict()
    trials = []
    for combo in itertools.product(*grid.values()):
        params = dict(zip(grid.keys(), combo))
        folder = out / config_label(params)
        for seed in seeds:
            trials.append(Trial(params, seed, str(folder / f"seed={seed}"), base, code))
    return trials


def trial_config(trial: Trial) -> TrainConfig:
    """The config a trial trains: the base with the grid values and the seed set, named after both.

    Raises ``ValueError``/``TypeError`` when the config rejects a grid value.
    """
    base = TrainConfig.from_dict(trial.base)
    label = config_label(trial.params)
    name = f"{base.name + ' ' if base.name else ''}{label} seed={trial.seed}"
    return base.replace(**trial.params, seed=trial.seed, name=name)


def callable_name(fn: Any) -> str | None:
    """``module.qualname`` of a model or data function (``functools.partial`` unwrapped); None for None."""
    if fn is None:
        return None
    target = getattr(fn, "func", fn)
    module = getattr(target, "__module__", None) or type(target).__module__
    qual = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{qual}"


def check_callable(name: str, fn: Any, backend: str) -> None:
    """Raise ``TypeError`` when ``fn`` cannot reach the backend's workers (the local backend imports by name)."""
    if fn is None:
        return
    if not callable(fn):
        raise TypeError(f"{name} must be a callable (seed -> ...), got {type(fn).__name__}")
    if backend != "local":
        return  # Ray pickles functions defined in a notebook by value (cloudpickle)
    target = getattr(fn, "func", fn)
    qual = getattr(target, "__qualname__", "")
    shown = getattr(target, "__qualname__", target)
    if "<lambda>" in qual or "<locals>" in qual:
        raise TypeError(
            f"{name} {shown!r} is a lambda or a nested function: the local backend's worker processes cannot "
            "import it. Define it at the top level of a module (.py file)"
        )
    if getattr(target, "__module__", None) == "__main__":  # the workers never import the caller's __main__
        raise TypeError(
            f"{name} {shown!r} is defined in this notebook, session or script (__main__): the local backend's "
            "worker processes cannot import it. Put it in a .py module next to the notebook and import it from there, "
            "or use backend='ray' (which ships notebook functions by value)"
        )


__all__ = [
    "SHORT_NAMES",
    "Trial",
    "callable_name",
    "check_callable",
    "check_grid",
    "check_seeds",
    "config_label",
    "plan",
    "trial_config",
]
