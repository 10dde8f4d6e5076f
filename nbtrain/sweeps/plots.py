"""Views of a sweep table (``nbtrain.sweep`` or ``nbtrain.load_sweep``).

``sweep_heatmap`` takes ``ax=None`` and returns the Axes it drew on; ``sweep_curves``
draws several panels and returns the Figure. Axes and titles name columns in words
(``WORDS``: "learning rate", "best validation loss"), grid values as people write them (an LR
as ``2e-5``), epochs 0-based on integer ticks, LR rows on a log scale ticked at the LRs used;
text is at least 9 pt (``FONTSIZE``, as the views' legends).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from ..diagnosis.formatting import sci
from ..training.runfolder import HISTORY_FILE
from .plan import SHORT_NAMES

SPREADS = ("std", "minmax")
FONTSIZE = 9
GRAD_NORM = "pre-clip gradient norm (L2)"
WORDS = {
    "lr": "learning rate", "grad_clip": "clip threshold (pre-clip L2 norm)", "scheduler_patience": "patience (epochs)",
    "batch_size": "batch size", "grad_accum_steps": "batches accumulated per step", "weight_decay": "weight decay",
    "seed": "seed", "best_val_loss": "best validation loss", "final_val_loss": "final validation loss",
    "val_loss": "validation loss", "train_loss": "training loss", "best_epoch": "epoch of the best validation loss",
    "clip_fraction": "share of steps clipped", "grad_norm_growth_p50": "growth of the median pre-clip norm (×)",
    "grad_norm_growth_max": "growth of the largest pre-clip norm (×)", "lr_cuts": "LR cuts",
    "grad_norm_p50": f"{GRAD_NORM}, median", "grad_norm_p90": f"{GRAD_NORM}, 90th percentile",
    "grad_norm_max": f"{GRAD_NORM}, largest", "final_lr": "final learning rate",
}
SMALL = ("lr", "final_lr", "lr_start", "min_lr", "weight_decay")  # values in scientific notation


def words(column: str) -> str:
    """A column's name in words (``WORDS``; else the name with spaces)."""
    return WORDS.get(column, column.replace("_", " "))


def value_text(column: str, value: Any) -> str:
    """A grid value as people write it: ``2e-5`` for an LR, ``2`` for a clip of 2.0, ``off`` for None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "off" if column == "grad_clip" else "none"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return sci(value) if column in SMALL else f"{value:g}"
    return str(value)


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
            ax.text(xi, yi, labels[yi][xi], ha="center", va="center", fontsize=FONTSIZE,
                    color="white" if dark_cell else "black")
    return image


def _heatmap_title(table, x: str, y: str, metric: str, where, left_out: int) -> str:
    others = [c for c in _grid_columns(table) if c not in (x, y) and not (where and c in where)]
    title = f"{words(metric).capitalize()}: mean over seeds" + "".join(f", {c}" for c in others)
    if where:
        title += "\n" + ", ".join(f"{k}={value_text(k, v)}" for k, v in where.items())
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
    ax.set_xticks(range(len(xs)), [value_text(x, v) for v in xs])
    ax.set_yticks(range(len(ys)), [value_text(y, v) for v in ys])
    ax.set_xlabel(words(x))
    ax.set_ylabel(words(y))
    ax.figure.colorbar(image, ax=ax, label=f"{words(metric)} (mean)")
    ax.set_title(_heatmap_title(table, x, y, metric, where, int((~ok).sum())), fontsize=10)
    return ax


def _history(run_dir: str):
    """``(epoch frame, meta)`` of a trial's history, or None when it has none."""
    from pathlib import Path

    from ..training.history import History

    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return None
    history = History.load(path)
    return history.to_dataframe("epoch"), history.meta


def _row_label(metric: str, metas: list[dict]) -> str:
    """A row's y label in words; a loss of the reference experiment with its units (MSE, normalized or raw)."""
    text = words(metric)
    if metric.endswith("loss") and metas and all(m.get("experiment") == "reference" for m in metas):
        raw = {(m.get("config") or {}).get("normalize") is False for m in metas}
        if len(raw) == 1:
            text += " (MSE, raw units)" if raw.pop() else " (MSE, normalized units)"
    return text


def _log_row(ax) -> None:
    """A log scale whose tick labels are plain numbers (``0.5``, ``2``), not powers of ten."""
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _pos: f"{v:.2g}")
    ax.yaxis.set_major_formatter(plain)
    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    if lo > 0 and hi / lo < 10:  # within a decade the minor ticks are the only ones: label them too
        ax.yaxis.set_minor_formatter(plain)


def _lr_row(axes_row, values: list[float]) -> None:
    """A log-scaled LR row ticked at the LRs used (at most 6), written ``2e-5``."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    used = sorted({float(v) for v in values if math.isfinite(v) and v > 0})
    if not used:
        return
    ticks = used if len(used) <= 6 else [used[i * (len(used) - 1) // 5] for i in range(6)]
    for ax in axes_row:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: sci(v)))
        ax.yaxis.set_minor_locator(NullLocator())


def _draw_point(axes, col: int, rows, metrics: Sequence[str], colors: dict, seen: dict) -> None:
    """The trials of one grid point (one line per seed) in column ``col``; ``seen`` gathers the
    metas and the LR values drawn."""
    for _, trial in rows.iterrows():
        got = _history(trial["run_dir"])
        if got is None or got[0].empty:
            continue
        frame, meta = got
        seen["metas"].append(meta)
        for r, metric in enumerate(metrics):
            if metric in frame.columns:
                axes[r][col].plot(frame["epoch"], frame[metric], marker=".", color=colors[trial["seed"]],
                                  label=f"seed {trial['seed']}")
                if metric in ("lr", "lr_start"):
                    seen["lr"] += [float(v) for v in frame[metric]]


def sweep_curves(table, metrics: Sequence[str] = ("val_loss", "grad_norm_p50"), log_grad: bool = True,
                 where: Mapping[str, Any] | None = None):
    """Small multiples: one column per grid point, one row per epoch metric, a line per seed.

    Reads each trial's ``history.json`` from its ``run_dir``. Rows share their y axis, so
    panels compare at a glance; ``grad_norm*`` and ``lr`` rows use a log scale when ``log_grad``
    (an LR row ticked at the LRs used). Panel titles name the grid point with the run folders'
    short names (``clip`` for grad_clip, ``pat`` for scheduler_patience): ``lr 2e-5``, ``clip 2``.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    _check_table(table, ["seed", "run_dir"])
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"metrics must be a non-empty list of epoch columns, got {metrics!r}")
    data = _select(table, where)
    grid_cols = _grid_columns(table)
    points = data[grid_cols].drop_duplicates().to_dict("records") if grid_cols else [{}]
    n = max(1, len(points))
    fig, axes = plt.subplots(len(metrics), n, figsize=(2.6 * n + 1.4, 2.3 * len(metrics) + 0.9),
                             sharex=True, sharey="row", squeeze=False)
    seeds = sorted(data["seed"].unique().tolist())
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(seeds)}
    seen: dict = {"metas": [], "lr": []}
    for col, point in enumerate(points):
        rows = data
        for k, v in point.items():
            rows = rows[rows[k] == v]
        _draw_point(axes, col, rows, metrics, colors, seen)
        title = "\n".join(f"{SHORT_NAMES.get(k, k)} {value_text(k, v)}" for k, v in point.items()) or "base"
        axes[0][col].set_title(title, fontsize=FONTSIZE)
        for r, metric in enumerate(metrics):
            if log_grad and metric.startswith("grad_norm"):
                _log_row(axes[r][col])
        axes[-1][col].set_xlabel("epoch (0 = first)", fontsize=FONTSIZE)
        axes[-1][col].xaxis.set_major_locator(MaxNLocator(integer=True))
    for r, metric in enumerate(metrics):
        axes[r][0].set_ylabel(_row_label(metric, seen["metas"]), fontsize=FONTSIZE)
        if log_grad and metric in ("lr", "lr_start"):
            _lr_row(axes[r], seen["lr"])
    _figure_legend(fig, axes)
    return fig


def _figure_legend(fig, axes) -> None:
    """One legend for the seeds, right of the panels."""
    handles, labels = [], []
    for a in axes.flat:
        for h, lab in zip(*a.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=FONTSIZE)
    fig.tight_layout(rect=(0, 0, 0.9 if handles else 1, 1))


__all__ = ["FONTSIZE", "WORDS", "sweep_curves", "sweep_heatmap", "value_text", "words"]
