"""The record of a run: one dict per optimizer step and one per epoch.

Rows are plain dicts of JSON-safe Python numbers (no tensors), so a History can be
saved, loaded, turned into a pandas DataFrame, or built from someone else's log.
Diagnostics, plots and reports read a History and never a live trainer.

Step rows (``History.steps``)::

    epoch        int    epoch the step belongs to (0-based)
    step         int    global optimizer-step index (0-based)
    loss         float  training loss of the step (mean over its micro-batches)
    grad_norm    float  total L2 norm of the gradient BEFORE clipping
    clipped      bool   grad_norm > grad_clip (False when clipping is off)
    clip_factor  float  factor the gradient was scaled by (1.0 when not clipped)
    lr           float  learning rate used for the step

and, under fp16's loss scaler (``TrainConfig(precision="16-mixed")``), on every step row::

    loss_scale   float  the scale this step's loss was multiplied by before backward
    skipped      bool   the scaler skipped the optimizer step (inf/NaN in the unscaled
                        gradients; grad_norm is then inf or NaN, and the step is not divergence)

Epoch rows (``History.epochs``)::

    epoch          int    0-based
    train_loss     float  mean of the epoch's step losses
    val_loss       float  validation loss at the end of the epoch
    lr             float  LR in force AFTER the epoch's scheduler step
    lr_start       float  LR in force at the epoch's first step
    grad_norm_p50  float  median pre-clip gradient norm over the epoch's steps
    grad_norm_p90  float  90th percentile
    grad_norm_max  float  largest
    clip_fraction  float  share of the epoch's steps that were clipped
    n_steps        int    optimizer steps in the epoch
    epoch_time_s   float  wall time of the epoch (training and validation)
    skipped_steps  int    steps the loss scaler skipped (only under fp16's loss scaler)

``meta`` is free-form; nbtrain's trainer records there, among others, the ``config``, the
``device`` the run ran on (``"cpu"``, ``"cuda:0"``, ``"mps"``) and its ``precision``.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Iterable

from ..files import from_json_safe, to_json_safe, to_python, write_json

STEP_COLUMNS = ("epoch", "step", "loss", "grad_norm", "clipped", "clip_factor", "lr")
EPOCH_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "lr",
    "lr_start",
    "grad_norm_p50",
    "grad_norm_p90",
    "grad_norm_max",
    "clip_fraction",
    "n_steps",
    "epoch_time_s",
)
# Columns that measure the machine, not the training: they differ between identical runs.
TIMING_COLUMNS = ("epoch_time_s",)

_FORMAT = "nbtrain.history/1"


class History:
    """Per-step and per-epoch records of one run, plus free-form ``meta``."""

    def __init__(
        self,
        steps: Iterable[dict] | None = None,
        epochs: Iterable[dict] | None = None,
        meta: dict | None = None,
    ) -> None:
        self.steps: list[dict] = [dict(r) for r in (steps or [])]
        self.epochs: list[dict] = [dict(r) for r in (epochs or [])]
        self.meta: dict = dict(meta or {})

    # -- building ---------------------------------------------------------------------
    def add_step(self, row: dict) -> None:
        self.steps.append(_plain_row(row))

    def add_epoch(self, row: dict) -> None:
        self.epochs.append(_plain_row(row))

    def truncate(self, n_epochs: int) -> None:
        """Keep only the first ``n_epochs`` epochs (and their steps)."""
        self.epochs = [r for r in self.epochs if r["epoch"] < n_epochs]
        self.steps = [r for r in self.steps if r["epoch"] < n_epochs]

    def copy(self) -> "History":
        return History(self.steps, self.epochs, copy.deepcopy(self.meta))

    # -- views ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.epochs)

    def __repr__(self) -> str:
        return f"History({len(self.epochs)} epochs, {len(self.steps)} steps)"

    def column(self, name: str, level: str = "epoch") -> list:
        rows = self._rows(level)
        return [r.get(name) for r in rows]

    def _rows(self, level: str) -> list[dict]:
        if level == "epoch":
            return self.epochs
        if level == "step":
            return self.steps
        raise ValueError(f"level must be 'epoch' or 'step', got {level!r}")

    def to_dataframe(self, level: str = "epoch"):
        """The records as a pandas DataFrame (one row per epoch or per step)."""
        import pandas as pd

        rows = self._rows(level)
        columns = EPOCH_COLUMNS if level == "epoch" else STEP_COLUMNS
        df = pd.DataFrame(rows)
        if df.empty:
            return pd.DataFrame(columns=list(columns))
        ordered = [c for c in columns if c in df.columns] + [c for c in df.columns if c not in columns]
        return df[ordered]

    @classmethod
    def from_dataframe(cls, epochs, steps=None, meta: dict | None = None) -> "History":
        """Build a History from DataFrames (epoch rows, and optionally step rows)."""
        return cls(
            steps=[] if steps is None else [_row_from_pandas(r) for r in steps.to_dict("records")],
            epochs=[_row_from_pandas(r) for r in epochs.to_dict("records")],
            meta=meta,
        )

    # -- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": _FORMAT, "meta": self.meta, "epochs": self.epochs, "steps": self.steps}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not an nbtrain history (expected format {_FORMAT!r})")
        if not isinstance(data.get("steps"), list) or not isinstance(data.get("epochs"), list):
            raise ValueError("an nbtrain history needs 'steps' and 'epochs' lists")
        return cls(steps=data["steps"], epochs=data["epochs"], meta=data.get("meta") or {})

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history as JSON, atomically. Non-finite floats survive the trip."""
        return write_json(path, self.to_dict(), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "History":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no history file at {path}")
        try:
            data = from_json_safe(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ValueError(f"history file {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return to_json_safe(self.steps) == to_json_safe(other.steps) and to_json_safe(self.epochs) == to_json_safe(other.epochs)


def _plain_row(row: dict) -> dict:
    """A row of Python numbers (numpy and torch scalars converted; NaN stays a float)."""
    try:
        return to_python(dict(row))
    except TypeError as exc:
        raise TypeError(f"history {exc}") from None


def _row_from_pandas(row: dict) -> dict:
    return _plain_row(row)
