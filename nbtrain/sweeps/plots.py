"""Views of a sweep table (``nbtrain.sweep`` or ``nbtrain.load_sweep``).

``sweep_heatmap`` takes ``ax=None`` and returns the Axes it drew on; ``sweep_curves``
draws several panels and returns the Figure.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from ..training.runfolder import HISTORY_FILE
from .plan import SHORT_NAMES

SPREADS = ("std", "minmax")


def _check_table(table: Any, needed: Sequence[str]) -> None:
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame from nbtrain.sweep, got {type(table).__name__}")
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column(s) {', '.join(map(repr, missing))}; columns: {', '.join(table.columns)}")


def _grid_columns(table) -> list[str]:
    return list(table.columns[: list(table.columns).index("seed")]) if "seed" in table.columns else []


def _select(table, where: Mapping[str, Any] | None):
    if not where:
        return table
    _check_table(table, list(where))
    mask = np.ones(len(table), dtype=bool)
    for key, value in where.items():
        mask &= (table[key] == value).to_numpy()
    if not mask.any():
        raise ValueError(f"no rows of the table match where={dict(where)!r}")
    return table[mask]


def _fmt(value: float, fmt: str) -> str:
    return format(value, fmt) if math.isfinite(value) else "n/a"


def _cell_label(cell: np.ndarray, spread: str, fmt: str) -> str:
    """A heatmap cell's text: mean, spread over the seeds (when there are two or more), run count."""
    if len(cell) == 0:
        return "no runs"
    m = float(cell.mean())
    if len(cell) == 1:  # no spread to show
        return f"{_fmt(m, fmt)}\nn=1"
    if spread == "std":
        extra = f"± {_fmt(float(cell.std(ddof=1)), fmt)}"
    else:
        extra = f"[{_fmt(float(cell.min()), fmt)}, {_fmt(float(cell.max()), fmt)}]"
    return f"{_fmt(m, fmt)}\n{extra}\nn={len(cell)}"


def _cells(data, x: str, y: str, metric: str, xs: list, ys: list, spread: str, fmt: str):
    """The (len(ys), len(xs)) means (NaN where no runs) and the cells' labels."""
    mean = np.full((len(ys), len(xs)), np.nan)
    labels = [["" for _ in xs] for _ in ys]
    for yi, yv in enumerate(ys):
        for xi, xv in enumerate(xs):
            cell = data[(data[x] == xv) & (data[y] == yv)][metric].astype(float).to_numpy()
            labels[yi][xi] = _cell_label(cell, spread, fmt)
            if len(cell):
                mean[yi, xi] = float(cell.mean())
    return mean, labels


def _draw_cells(ax, mean: np.ndarray, labels: list, cmap: str):
    image = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, aspect="auto", origin="lower")
    finite = mean[np.isfinite(mean)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for yi in range(mean.shape[0]):
        for xi in range(mean.shape[1]):
            v = mean[yi, xi]
            # light text on the dark end of the colormap, dark text on the light end
            dark_cell = math.isfinite(v) and ((v > mid) == cmap.endswith("_r"))
            ax.text(xi, yi, labels[yi][xi], ha="center", va="center", fontsize=8,
                    color="white" if dark_cell else "black")
    return image


def _heatmap_title(table, x: str, y: str, metric: str, where, left_out: int) -> str:
    others = [c for c in _grid_columns(table) if c not in (x, y) and not (where and c in where)]
    title = f"{metric}: mean over seeds" + "".join(f", {c}" for c in others)
    if where:
        title += "\n" + ", ".join(f"{k}={v}" for k, v in where.items())
    if left_out:
        title += f"\n({left_out} run(s) without a value left out)"
    return title


def sweep_heatmap(
    table,
    x: str,
    y: str,
    metric: str = "best_val_loss",
    spread: str = "std",
    where: Mapping[str, Any] | None = None,
    fmt: str = ".3g",
    cmap: str = "viridis_r",
    ax=None,
):
    """Mean of ``metric`` over seeds for each (``y``, ``x``) pair of grid values, as a heatmap.

    Each cell's annotation gives the mean and the spread over the seeds (``spread="std"``:
    ``± standard deviation``; ``"minmax"``: ``[min, max]``) and ``n=`` the number of finished
    runs it averages. Grid axes other than ``x`` and ``y`` are averaged over too, unless
    ``where`` fixes them (``where={"scheduler_patience": 3}``); the title says which.
    Runs that failed, or whose ``metric`` is missing (a diverged run before its first
    epoch), are left out and counted in the title. Returns the Axes.
    """
    _check_table(table, [x, y, metric])
    if spread not in SPREADS:
        raise ValueError(f"spread must be one of {', '.join(map(repr, SPREADS))}, got {spread!r}")
    if x == y:
        raise ValueError(f"x and y must be different columns, got {x!r} twice")
    data = _select(table, where)
    ok = np.isfinite(data[metric].astype(float).to_numpy())
    xs = sorted(table[x].dropna().unique().tolist())
    ys = sorted(table[y].dropna().unique().tolist())
    mean, labels = _cells(data[ok], x, y, metric, xs, ys, spread, fmt)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(1.9 * len(xs) + 2.2, 1.2 * len(ys) + 1.6))
    image = _draw_cells(ax, mean, labels, cmap)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.figure.colorbar(image, ax=ax, label=f"{metric} (mean)")
    ax.set_title(_heatmap_title(table, x, y, metric, where, int((~ok).sum())), fontsize=10)
    return ax


def _history_frame(run_dir: str):
    from pathlib import Path

    from ..training.history import History

    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return None
    return History.load(path).to_dataframe("epoch")


def sweep_curves(table, metrics: Sequence[str] = ("val_loss", "grad_norm_p50"), log_grad: bool = True,
                 where: Mapping[str, Any] | None = None):
    """Small multiples: one column per grid point, one row per epoch metric, a line per seed.

    Reads each trial's ``history.json`` from its ``run_dir``. Rows share their y axis, so
    panels compare at a glance; ``grad_norm*`` and ``lr`` rows use a log scale when ``log_grad``.
    Panel titles use the short names of the run folders (``clip`` for grad_clip, ``pat`` for
    scheduler_patience).
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    _check_table(table, ["seed", "run_dir"])
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"metrics must be a non-empty list of epoch columns, got {metrics!r}")
    data = _select(table, where)
    grid_cols = _grid_columns(table)
    points = data[grid_cols].drop_duplicates().to_dict("records") if grid_cols else [{}]
    n = max(1, len(points))
    fig, axes = plt.subplots(len(metrics), n, figsize=(2.4 * n + 1.0, 2.2 * len(metrics) + 0.8),
                             sharex=True, sharey="row", squeeze=False)
    seeds = sorted(data["seed"].unique().tolist())
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(seeds)}
    for col, point in enumerate(points):
        rows = data
        for k, v in point.items():
            rows = rows[rows[k] == v]
        title = "\n".join(f"{SHORT_NAMES.get(k, k)}={v}" for k, v in point.items()) or "base"
        for _, trial in rows.iterrows():
            frame = _history_frame(trial["run_dir"])
            if frame is None or frame.empty:
                continue
            for r, metric in enumerate(metrics):
                if metric in frame.columns:
                    axes[r][col].plot(frame["epoch"], frame[metric], marker=".", color=colors[trial["seed"]],
                                      label=f"seed {trial['seed']}")
        axes[0][col].set_title(title, fontsize=9)
        for r, metric in enumerate(metrics):
            if log_grad and (metric.startswith("grad_norm") or metric in ("lr", "lr_start")):
                axes[r][col].set_yscale("log")
            axes[-1][col].set_xlabel("epoch")
    for r, metric in enumerate(metrics):
        axes[r][0].set_ylabel(metric)
    handles, labels = [], []
    for a in axes.flat:
        for h, lab in zip(*a.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.93 if handles else 1, 1))
    return fig


__all__ = ["sweep_curves", "sweep_heatmap"]
