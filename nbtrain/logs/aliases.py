"""Column names: one alias table per format, mapping a log's names to nbtrain's.

nbtrain's names (``History`` rows, see ``nbtrain.training.history``):

- index: ``step`` (global optimizer step), ``epoch``;
- step quantities (a step row each): ``loss``, ``grad_norm`` (pre-clip total L2 norm),
  ``lr``, ``clipped``, ``clip_factor``, ``skipped``, ``loss_scale``;
- evaluation quantities (an evaluation row each): ``val_loss``, ``train_loss`` (a training
  loss over an epoch), ``lr_start``, ``grad_norm_p50``/``_p90``/``_max``,
  ``clip_fraction``, ``n_steps``, ``epoch_time_s``.

Each table maps an nbtrain name to the log names that mean it, in priority order: when a
log holds several (``train_loss_step`` and ``loss``), the first listed is read and the
others are named in the notes. A compiled pattern stands for every name it matches in full
(``lr-AdamW``, ``lr-SGD``); the first such column in the file is read. Matching is exact,
then case-insensitive. ``read_log(..., columns={their name: nbtrain name or None})`` goes
first and overrides the table (None: do not read that column).
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Pattern, Union

INDEX_NAMES = ("step", "epoch")
STEP_NAMES = ("loss", "grad_norm", "lr", "clipped", "clip_factor", "skipped", "loss_scale")
EVAL_NAMES = ("val_loss", "train_loss", "lr_start", "grad_norm_p50", "grad_norm_p90", "grad_norm_max",
              "clip_fraction", "n_steps", "epoch_time_s")
NBTRAIN_NAMES = INDEX_NAMES + STEP_NAMES + EVAL_NAMES

Alias = Union[str, Pattern[str]]
Table = Mapping[str, tuple]

_LR_GROUP = re.compile(r"lr-[^/]+")  # LearningRateMonitor: lr-<Optimizer>
_LR_PG1 = re.compile(r"lr-[^/]+/pg1")  # several parameter groups: lr-<Optimizer>/pg1, /pg2, ...

_VAL = ("val_loss", "valid_loss", "validation_loss", "val/loss", "valid/loss", "validation/loss", "eval_loss",
        "eval/loss", "val_loss_epoch")

HUGGINGFACE: Table = {
    "step": ("step",),
    "epoch": ("epoch",),
    "loss": ("loss",),
    "grad_norm": ("grad_norm",),
    "lr": ("learning_rate", "lr"),
    "val_loss": ("eval_loss",),
}

LIGHTNING: Table = {
    "step": ("step",),
    "epoch": ("epoch",),
    "loss": ("train_loss_step", "train_loss", "loss_step", "loss", "training_loss_step", "training_loss",
             "train/loss_step", "train/loss"),
    "train_loss": ("train_loss_epoch", "loss_epoch", "training_loss_epoch", "train/loss_epoch"),
    "val_loss": _VAL,
    "lr": (_LR_GROUP, _LR_PG1, "lr", "learning_rate", "train/lr"),
    "grad_norm": ("grad_2.0_norm_total", "grad_2_norm_total", "grad_norm", "grad_norm_total", "train/grad_norm",
                  "gradient_norm"),
}

KERAS: Table = {
    "epoch": ("epoch",),
    "train_loss": ("loss",),
    "val_loss": ("val_loss",),
    "lr": ("learning_rate", "lr"),
}

# plain CSV / JSON lines: nbtrain's own names, then common variants
PLAIN: Table = {
    "step": ("step", "global_step", "iteration", "iter", "it"),
    "epoch": ("epoch",),
    "loss": ("loss", "train_loss_step", "training_loss", "train/loss"),
    "train_loss": ("train_loss", "train_loss_epoch"),
    "val_loss": _VAL,
    "lr": ("lr", "learning_rate"),
    "grad_norm": ("grad_norm", "gradient_norm", "grad_norm_total", "grad_2.0_norm_total", "total_norm"),
    **{name: (name,) for name in ("clipped", "clip_factor", "skipped", "loss_scale") + EVAL_NAMES[2:]},
}

# TensorBoard tags whose x axis is the global step: nbtrain's TensorBoardCallback (step/*),
# the Hugging Face Trainer's (train/*, eval/*), then Lightning's logger names.
TENSORBOARD_STEPS: Table = {
    "step": (),
    "epoch": ("train/epoch", "epoch"),
    "loss": ("step/loss", "train/loss") + LIGHTNING["loss"][:-1],
    "train_loss": LIGHTNING["train_loss"],
    "val_loss": _VAL,
    "lr": ("step/lr", "train/learning_rate") + LIGHTNING["lr"],
    "grad_norm": ("step/grad_norm", "train/grad_norm") + LIGHTNING["grad_norm"][:-1],
    "clipped": ("step/clipped",),
    "clip_factor": ("step/clip_factor",),
}
# ... and whose x axis is the epoch (nbtrain's TensorBoardCallback, epoch/*)
TENSORBOARD_EPOCHS: Table = {
    name: (f"epoch/{name}",)
    for name in ("train_loss", "val_loss", "lr", "clip_fraction", "grad_norm_p50", "grad_norm_p90", "grad_norm_max")
}


def check_columns(columns: Mapping | None) -> dict:
    """``columns=`` as a dict, or ValueError/TypeError naming what is wrong."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise TypeError(f"columns must be a dict {{their name: nbtrain name}}, got {type(columns).__name__}")
    for key, value in columns.items():
        if not isinstance(key, str):
            raise TypeError(f"columns keys must be the log's column names (str), got {key!r}")
        if value is not None and value not in NBTRAIN_NAMES:
            raise ValueError(f"columns[{key!r}] = {value!r} is not an nbtrain name; use one of "
                             f"{', '.join(NBTRAIN_NAMES)} (or None to leave the column out)")
    return dict(columns)


def _matches(alias: Alias, name: str) -> bool:
    if isinstance(alias, str):
        return alias == name
    return alias.fullmatch(name) is not None


def _find(alias: Alias, names: list[str], taken: set[str]) -> list[str]:
    free = [n for n in names if n not in taken]
    found = [n for n in free if _matches(alias, n)]
    if not found and isinstance(alias, str):
        found = [n for n in free if n.lower() == alias.lower()]
    return found


def resolve(names: Iterable[str], table: Table, columns: Mapping | None = None) -> tuple[dict, list[str]]:
    """``({log name: nbtrain name}, notes)`` for the log's ``names``: ``columns`` first,
    then ``table`` in its priority order. The notes name the user's names the log lacks,
    the aliases passed over and the columns left unread."""
    names = list(dict.fromkeys(names))
    user = dict(columns or {})
    mapping = {n: t for n, t in user.items() if n in names and t is not None}
    taken = set(user) | set(mapping)
    notes = []
    missing = [n for n in user if n not in names]
    if missing:
        notes.append(f"columns= names not in the log: {', '.join(map(repr, missing))}")
    for target, aliases in table.items():
        if target in mapping.values():
            continue
        for alias in aliases:
            found = _find(alias, names, taken)
            if found:
                mapping[found[0]] = target
                taken.update(found)
                if len(found) > 1 or any(_find(a, names, taken) for a in aliases):
                    others = found[1:] + [n for a in aliases for n in _find(a, names, taken)]
                    notes.append(f"{found[0]!r} read as {target}; also there, not read: {_listed(others)}")
                    taken.update(others)
                break
    unread = [n for n in names if n not in mapping and n not in taken]
    if unread:
        notes.append(f"columns not read (no nbtrain meaning): {_listed(unread)}")
    return {n: mapping[n] for n in names if n in mapping}, notes


def _listed(names: list[str], limit: int = 6) -> str:
    names = list(dict.fromkeys(names))
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


__all__ = [
    "EVAL_NAMES",
    "HUGGINGFACE",
    "INDEX_NAMES",
    "KERAS",
    "LIGHTNING",
    "NBTRAIN_NAMES",
    "PLAIN",
    "STEP_NAMES",
    "TENSORBOARD_EPOCHS",
    "TENSORBOARD_STEPS",
    "check_columns",
    "resolve",
]
