"""Lightning ``CSVLogger`` logs: ``metrics.csv`` in a version folder.

``CSVLogger(save_dir)`` writes ``<save_dir>/lightning_logs/version_N/metrics.csv`` (and
``hparams.yaml``). Its rows are sparse: each ``self.log`` flush, ``LearningRateMonitor``
call or validation run writes a row with ``step`` (and usually ``epoch``) and only the
cells it logged; an empty cell means "not logged here", never NaN.

- step rows: the cells of training quantities (``train_loss_step``, ``loss``,
  ``lr-<Optimizer>``, ``grad_2.0_norm_total`` from ``lightning.pytorch.utilities.grad_norm``,
  ...) joined by ``step`` (``rows.sparse_rows``);
- evaluation rows: the validation loss (``val_loss``, ``valid_loss``, ``val/loss``, ...) and
  the epoch's training loss (``train_loss_epoch``) joined by ``(step, epoch)``.

The names read are ``aliases.LIGHTNING``. Per-parameter gradient norms
(``grad_2.0_norm/<param>``) and other metrics are not read (the notes name them). A
``gradient_clip_val`` in ``hparams.yaml`` (read with ``yaml.safe_load`` when PyYAML is
installed) becomes ``meta["config"]["grad_clip"]``; nothing else there is taken.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..training.history import History
from .aliases import LIGHTNING, resolve
from .errors import LogFormatError, NotThisFormat
from .rows import make_history, sparse_rows
from .tables import Table, mapped_records

METRICS_FILE = "metrics.csv"
HPARAMS_FILE = "hparams.yaml"
_VERSION = re.compile(r"version_(\d+)")
_LIGHTNING_STYLE = re.compile(r"lr-.+|.+_(step|epoch)|grad_.+_norm.*")


def locate(path: Path) -> tuple[Path, list[str]]:
    """The ``metrics.csv`` of a file or folder: the folder's own, else the latest
    ``version_N`` below it (one or two levels: ``lightning_logs/version_N``)."""
    if path.is_file():
        return path, []
    if (path / METRICS_FILE).is_file():
        return path / METRICS_FILE, []
    versions = _versions(path)
    if not versions:  # <save_dir>/lightning_logs/version_N
        for sub in sorted(p for p in path.iterdir() if p.is_dir()):
            versions += _versions(sub)
    if not versions:
        raise NotThisFormat(f"no {METRICS_FILE}, here or in a version_N folder")
    latest = max(versions)[1]
    note = f"read {latest.relative_to(path)}/{METRICS_FILE}, the latest of {len(versions)} version folder(s)"
    return latest / METRICS_FILE, [note]


def _versions(folder: Path) -> list[tuple[int, Path]]:
    return [(int(m.group(1)), p) for p in folder.iterdir()
            if p.is_dir() and (m := _VERSION.fullmatch(p.name)) and (p / METRICS_FILE).is_file()]


def looks_like_lightning(table: Table) -> bool:
    """Lightning's own file name, or a ``step`` column beside Lightning-style names."""
    if table.path.name == METRICS_FILE and "step" in table.names:
        return True
    return "step" in table.names and "epoch" in table.names and any(_LIGHTNING_STYLE.fullmatch(n) for n in table.names)


def read(table: Table, columns: dict, notes: list[str], forced: bool) -> History:
    """A ``metrics.csv`` Table as a History."""
    if not forced and not looks_like_lightning(table):
        raise NotThisFormat(f"not a {METRICS_FILE} (needs 'step' and 'epoch' columns and Lightning-style names)")
    mapping, column_notes = resolve(table.names, LIGHTNING, columns)
    if "step" not in mapping.values():
        raise NotThisFormat("no 'step' column")
    if not set(mapping.values()) - {"step", "epoch"}:
        raise NotThisFormat(f"no loss, validation loss, LR or gradient-norm column (columns: {table.names})")
    steps, evals, _ = sparse_rows(mapped_records(table, mapping, LogFormatError))
    if not steps and not evals:
        raise NotThisFormat("no row logs a training or validation quantity")
    config, config_notes = _hparams(table.path.parent / HPARAMS_FILE)
    notes = notes + table.notes + config_notes + column_notes
    return make_history(steps, evals, fmt="lightning", path=table.path, columns=mapping, notes=notes, config=config)


def _hparams(path: Path) -> tuple[dict, list[str]]:
    """``{"grad_clip": v}`` from ``hparams.yaml``'s ``gradient_clip_val`` (a positive number), and notes."""
    if not path.is_file():
        return {}, []
    try:
        import yaml
    except ImportError:
        return {}, [f"{HPARAMS_FILE} not read: PyYAML is not installed"]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        return {}, [f"{HPARAMS_FILE} not read (only plain YAML is): {str(exc).splitlines()[0]}"]
    value = data.get("gradient_clip_val") if isinstance(data, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return {"grad_clip": float(value)}, [f"clip threshold {value:g} from {HPARAMS_FILE}'s gradient_clip_val"]
    return {}, []


__all__ = ["HPARAMS_FILE", "METRICS_FILE", "locate", "looks_like_lightning", "read"]
