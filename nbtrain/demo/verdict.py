"""The demo's verdict: one paragraph, written from two rounds' numbers, that a person can act on.

``verdict(before, after)`` says what the second round changed (its config against the first's),
what it fixed and what it made worse (the numbers of both, as the table writes them), how each
round's validation loss ended, and what to try next, chosen from those numbers. No sentence is
canned: each names the measured values it rests on, and a sentence whose numbers are missing is
left out.

Definitions (this module's; the quantities themselves are ``summarize``'s)
-------------------------------------------------------------------------
material change
    Validation losses: more than ``alternatives.TIE`` (1%) apart, relative, as ``diagnose``'s
    measured alternatives count them. The share of steps clipped: at least ``SHARE_POINTS``
    (5 percentage points) apart. Gradient growth: more than ``GROWTH_RTOL`` (10%) apart, relative.
    Anything closer is "about the same".
heavy clipping
    More than half of the last epoch's steps clipped (the Tuning Playbook's "extremely
    aggressive" line, as ``HEAVY_CLIPPING`` reads it).
"""

from __future__ import annotations

from typing import Any, Callable

from ..diagnosis.alternatives import IGNORED, TIE, value_text
from ..diagnosis.formatting import and_list, percent, sci, sig
from ..training.config import TrainConfig
from .outcome import Outcome
from .table import growth_text

SHARE_POINTS = 0.05
GROWTH_RTOL = 0.10
HEAVY_SHARE = 0.5
FIELD_WORDS = {
    "lr": "the learning rate", "grad_clip": "the clip threshold", "scheduler_patience": "the plateau patience",
    "scheduler": "the LR scheduler", "scheduler_factor": "the plateau cut factor", "batch_size": "the batch size",
    "grad_accum_steps": "the micro-batches per optimizer step", "epochs": "the number of epochs",
    "weight_decay": "the weight decay", "normalize": "input normalization", "precision": "the precision",
}
# (summary key, words, format, how a change counts as material); lower is better for each
METRICS: tuple[tuple[str, str, Callable[[float], str], str], ...] = (
    ("clip_fraction", "the share of clipped steps", percent, "share"),
    ("best_val_loss", "the best validation loss", sig, "loss"),
    ("final_val_loss", "the last epoch's validation loss", sig, "loss"),
    ("grad_norm_growth_p50", "the growth of the median pre-clip norm", growth_text, "ratio"),
)


def _material(a: float, b: float, kind: str) -> bool:
    if kind == "share":
        return abs(b - a) >= SHARE_POINTS
    tol = TIE if kind == "loss" else GROWTH_RTOL
    return abs(b - a) > tol * abs(a)


def config_changes(before: TrainConfig | None, after: TrainConfig | None) -> dict[str, tuple[Any, Any]]:
    """``{field: (before's value, after's)}`` for the TrainConfig fields that differ (name,
    seed, device and the compiled path aside: ``alternatives.IGNORED``); empty without configs."""
    if before is None or after is None:
        return {}
    a, b = before.to_dict(), after.to_dict()
    return {k: (a[k], b[k]) for k in a if k not in IGNORED and a[k] != b.get(k)}


def _changed_sentence(before: Outcome, after: Outcome) -> str:
    if before.config is None or after.config is None:
        return ""
    changes = config_changes(before.config, after.config)
    if not changes:
        return f"Against {before.name}, {after.name} used the same settings."
    parts = [f"{FIELD_WORDS.get(k, k.replace('_', ' '))} from {value_text(k, a)} to {value_text(k, b)}"
             for k, (a, b) in changes.items()]
    return f"Against {before.name}, {after.name} changed {and_list(parts)}."


def effects(before: Outcome, after: Outcome) -> tuple[list[str], list[str], list[str]]:
    """What ``after`` lowered, raised and left about the same (``METRICS``, lower is better), each
    as ``"<quantity> from <before's> to <after's>"`` (the same: ``"<quantity> (<a> vs <b>)"``)."""
    fixed, worse, same = [], [], []
    for key, words, fmt, kind in METRICS:
        a, b = before.summary.get(key), after.summary.get(key)
        if a is None or b is None:
            continue
        if not _material(a, b, kind):
            same.append(f"{words} ({fmt(a)} vs {fmt(b)})")
        else:
            (fixed if b < a else worse).append(f"{words} from {fmt(a)} to {fmt(b)}")
    return fixed, worse, same


def _effects_sentence(before: Outcome, after: Outcome) -> str:
    fixed, worse, same = effects(before, after)
    parts = ([f"cut {and_list(fixed)}"] if fixed else []) + ([f"raised {and_list(worse)}"] if worse else [])
    text = "It " + ", but ".join(parts) if parts else ""
    if same:
        left = f"left {and_list(same)} about the same"
        text = f"{text}; it {left}" if text else f"It {left}"
    return text + "." if text else ""


def _ending(o: Outcome) -> str:
    """How a round's validation loss ended, in words (empty when unknown or a single epoch)."""
    if o.best_epoch is None or len(o.epoch_numbers) < 2:
        return ""
    at = f"at epoch {o.best_epoch} (of {o.epochs_text})"
    return f"was still falling for {o.name} {at}, its last" if o.still_improving else f"bottomed out for {o.name} {at}"


def _endings_sentence(before: Outcome, after: Outcome) -> str:
    parts = [p for p in (_ending(before), _ending(after)) if p]
    if not parts:
        return ""
    text = "Validation loss " + " and ".join(parts)
    patience = config_changes(before.config, after.config).get("scheduler_patience")
    if patience is not None and after.summary.get("lr_cuts") == 0:
        text += f"; {after.name} never cut its LR, so its patience of {patience[1]} never acted"
    return text + "."


def _lr_direction(before: Outcome, after: Outcome) -> str:
    a, b = before.setting("lr"), after.setting("lr")
    if a is None or b is None or a == b:
        return "same"
    return "lower" if b < a else "higher"


def _compare_best(before: Outcome, after: Outcome) -> str:
    """``"better"``, ``"worse"`` or ``"same"``: ``after``'s best validation loss against ``before``'s."""
    a, b = before.best_val, after.best_val
    if b is None:
        return "worse" if a is not None else "same"
    if a is None:
        return "better"
    if not _material(a, b, "loss"):
        return "same"
    return "better" if b < a else "worse"


def next_step(before: Outcome, after: Outcome) -> str:
    """What to try next, chosen from the two rounds' numbers (see the module's docstring)."""
    best, lr = _compare_best(before, after), _lr_direction(before, after)
    longer = f" and give {after.name} more epochs, since it was still improving" if after.still_improving else ""
    if best == "worse" and lr == "lower":
        text = (f"Next: the round with the lower learning rate has the worse best validation loss, so lowering it "
                f"further points the wrong way; try rates above {before.name}'s {sci(before.setting('lr'))} in short "
                f"runs{longer}.")
    elif best == "worse" and lr == "higher":
        text = (f"Next: the round with the higher learning rate has the worse best validation loss; try rates "
                f"between {sci(before.setting('lr'))} and {sci(after.setting('lr'))}{longer}.")
    elif best == "worse":
        text = f"Next: try {after.name}'s changes one at a time to find the one that hurt{longer}."
    elif after.still_improving:
        text = (f"Next: keep {after.name}'s settings and train longer: its validation loss had not stopped "
                f"falling.")
    elif after.best_epoch is not None and len(after.epoch_numbers) >= 2:
        text = (f"Next: keep {after.name}'s settings and keep the weights of its best epoch "
                f"(epoch {after.best_epoch}); the stall after it is the problem left.")
    else:
        text = f"Next: keep {after.name}'s settings."
    if after.clipped_last is not None and after.clipped_last > HEAVY_SHARE:
        fix = "a warmup" if lr == "lower" and best == "worse" else "a warmup or a lower learning rate"
        text += f" Clipping still caught {percent(after.clipped_last)} of {after.name}'s last-epoch steps: try {fix}."
    return text


def _seeds_sentence(before: Outcome, after: Outcome) -> str:
    seeds = {before.setting("seed"), after.setting("seed")}
    if None in seeds:
        return ""
    if len(seeds) == 1:
        return f"Each round ran from seed {seeds.pop()} only: check other seeds before relying on this."
    named = and_list([str(s) for s in sorted(seeds)])
    return f"The rounds ran from different seeds ({named}), one run each: check more seeds before relying on this."


def verdict(before: Outcome, after: Outcome) -> str:
    """One paragraph: what ``after`` changed, fixed and made worse against ``before``, how their
    validation losses ended, and what to try next (see the module's docstring)."""
    for name, o in (("before", before), ("after", after)):
        if not isinstance(o, Outcome):
            raise TypeError(f"{name} must be an Outcome (nbtrain.demo.outcome), got {type(o).__name__}")
    sentences = [_changed_sentence(before, after), _effects_sentence(before, after),
                 _endings_sentence(before, after), next_step(before, after), _seeds_sentence(before, after)]
    text = " ".join(s for s in sentences if s)
    return text[0].upper() + text[1:]


__all__ = ["FIELD_WORDS", "GROWTH_RTOL", "HEAVY_SHARE", "METRICS", "SHARE_POINTS", "config_changes", "effects",
           "next_step", "verdict"]
