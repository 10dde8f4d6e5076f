"""Alternatives already measured on the same problem, and what they say about the suggestions.

``diagnose(history, config, tried=...)`` takes ``tried``: run folders or logs (paths that
``nbtrain.logs.load_log`` reads), runs (anything with ``.history`` and ``.config``: a Run, a
LoadedRun), ``(label, history)`` pairs, a sweep table (a DataFrame with TrainConfig columns and
``best_val_loss``, as ``nbtrain.sweep`` returns it), or a list of these.

Definitions
-----------
changes
    The TrainConfig fields whose value differs from the diagnosed run's config (``IGNORED``
    fields aside: the name, the seed, the device, the compiled path and the Adam kernel do not change the
    experiment). A run's config is its ``.config`` or the one its history stores; a sweep
    table's row is the config in its ``run_dir`` (``config.json``) when there is one, else the
    diagnosed run's config with the row's TrainConfig columns (and ``epochs`` from
    ``epochs_done`` when the table has no ``epochs`` column). A field the diagnosed run's
    config does not state counts as a change (its value here is unknown).
result
    Each run's best validation loss (``summarize``'s ``best_val_loss``). Runs with the same
    changes are one alternative (other seeds): its result is their mean.
baseline
    The mean result of the tried runs without changes (the same config: other seeds, or the run
    itself) when there are any, else the diagnosed run's own best validation loss.
verdict
    ``"better"`` when the result is below the baseline by more than ``TIE`` (1%, relative),
    ``"worse"`` when above by more, else ``"about the same"``; a run that diverged or logged no
    finite validation loss is ``"worse"``. When both sides hold two or more runs (seeds) whose
    ranges overlap, the text adds "(the runs' ranges overlap)": a difference of means to read
    with care.
measuring a suggestion
    A suggested change (``findings.Change``) is measured by the alternatives whose changes are
    that one field alone, moved the way it says: lower or higher than here, or to its value
    (within ``CLOSE``, 25%, for a number). A proposed change (``advise="do"``) stays suggested
    only when one of them measured better (the sentence then names the best); otherwise its
    sentence is replaced by the measurements and "not suggested". A change advised against
    (``"avoid"``) that measured better is said so instead of the advice.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..training.config import TrainConfig
from .findings import Change, Diagnosis
from .formatting import and_list, sci, sig
from .settings import Settings
from .summary import summarize

IGNORED = frozenset({"name", "seed", "device", "compile", "fused_adam"})
FIELDS = tuple(f for f in TrainConfig().to_dict() if f not in IGNORED)
SMALL_FIELDS = ("lr", "min_lr", "weight_decay", "scheduler_threshold")  # shown in scientific notation
TIE = 0.01
CLOSE = 0.25


@dataclass
class Alternative:
    """Runs of one config other than the diagnosed run's (see the module's definitions)."""

    changes: dict  # field -> value (the diagnosed run's value in ``before``)
    before: dict
    values: list = field(default_factory=list)  # best validation loss per run (None: none, or diverged)
    labels: list = field(default_factory=list)  # the runs' names or sources

    @property
    def result(self) -> float | None:
        ok = [v for v in self.values if v is not None and math.isfinite(v)]
        return sum(ok) / len(ok) if ok and len(ok) == len(self.values) else None

    @property
    def description(self) -> str:
        """``"lr 5e-6"``, ``"lr 2e-5, grad_clip 2 and scheduler_patience 5"``; ``"the same config"``."""
        return and_list([f"{k} {value_text(k, v)}" for k, v in self.changes.items()]) or "the same config"

    def verdict(self, baseline: float | None) -> str:
        r = self.result
        if r is None:
            return "worse"
        if baseline is None:
            return "not compared"
        if r < baseline * (1 - TIE):
            return "better"
        return "worse" if r > baseline * (1 + TIE) else "about the same"

    def result_text(self) -> str:
        r, n = self.result, len(self.values)
        if r is None:
            bad = sum(1 for v in self.values if v is None or not math.isfinite(v))
            return f"none: {bad} of {n} run(s) diverged or logged no finite validation loss"
        if len(self.values) == 1:
            return sig(r)
        return f"{sig(r)} (mean of {len(self.values)} runs, {sig(min(self.values))}-{sig(max(self.values))})"

    def measures(self, change: Change) -> bool:
        """Whether this alternative is that change alone (see the module's definitions)."""
        if list(self.changes) != [change.field]:
            return False
        new, old = self.changes[change.field], self.before.get(change.field)
        if change.direction == "to":
            if isinstance(new, (int, float)) and isinstance(change.value, (int, float)) and change.value:
                return abs(new - change.value) <= CLOSE * abs(change.value)
            return new == change.value
        if not (isinstance(new, (int, float)) and isinstance(old, (int, float))):
            return False
        return new < old if change.direction == "lower" else new > old

    def opposes(self, change: Change) -> bool:
        """Whether this alternative moved the change's field the other way (alone or with other changes)."""
        if change.direction not in ("lower", "higher") or change.field not in self.changes:
            return False
        new, old = self.changes[change.field], self.before.get(change.field)
        if not (isinstance(new, (int, float)) and isinstance(old, (int, float))):
            return False
        return new > old if change.direction == "lower" else new < old


def value_text(name: str, value: Any) -> str:
    if value is None:
        return "off" if name == "grad_clip" else "none"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return sci(value) if name in SMALL_FIELDS else f"{value:g}"


def config_fields(config: Any, meta_config: Any, settings: Settings) -> dict:
    """The diagnosed run's config as a dict: ``config`` (a TrainConfig or a dict), else the one
    its history stores, with the settings read from the log where neither states them."""
    if isinstance(config, TrainConfig):
        return config.to_dict()
    out = dict(config) if isinstance(config, dict) else dict(meta_config) if isinstance(meta_config, dict) else {}
    read = {"lr": settings.lr, "scheduler": settings.scheduler}
    if settings.clip_known:
        read["grad_clip"] = settings.grad_clip
    if settings.scheduler == "plateau":
        read["scheduler_patience"] = settings.patience
    for name, value in read.items():
        if name not in out and value is not None:
            out[name] = value
    return out


def _changes(config: dict, base: dict) -> dict:
    out = {}
    for name in FIELDS:
        if name not in config:
            continue
        new, old = config[name], base.get(name)
        same = name in base and (new == old or (isinstance(new, float) and isinstance(old, (int, float))
                                                and math.isclose(new, old, rel_tol=1e-9)))
        if not same:
            out[name] = new
    return out


# -- the tried runs, one (label, config, best validation loss) each ----------------------------------------
def _runs(tried: Any) -> Iterable[tuple[str, dict | None, float | None]]:
    import pandas as pd

    if isinstance(tried, pd.DataFrame):
        yield from _table_rows(tried)
    elif isinstance(tried, (str, os.PathLike)):
        from ..logs.loading import load_log

        loaded = load_log(tried)
        yield _run_row(loaded.name, loaded.history, loaded.config)
    elif (isinstance(tried, tuple) and len(tried) == 2 and isinstance(tried[0], str)
          and not isinstance(tried[1], (str, os.PathLike))):  # a (label, history) pair, not two paths
        yield _run_row(tried[0], tried[1], None)
    elif hasattr(tried, "history") and hasattr(tried, "config"):
        name = getattr(tried, "name", None) or getattr(tried.config, "name", "") or "run"
        yield _run_row(name, tried.history, tried.config)
    elif isinstance(tried, (list, tuple)):
        for item in tried:
            yield from _runs(item)
    else:
        raise TypeError(f"tried must be run folders, runs, (label, history) pairs or a sweep table, "
                        f"got {type(tried).__name__}: {tried!r:.80}")


def _run_row(name: str, history: Any, config: Any) -> tuple[str, dict | None, float | None]:
    meta = getattr(history, "meta", {}) or {}
    cfg = config.to_dict() if isinstance(config, TrainConfig) else config if isinstance(config, dict) else None
    if cfg is None and isinstance(meta.get("config"), dict):
        cfg = meta["config"]
    best = summarize(history, config)["best_val_loss"]
    return name, cfg, None if meta.get("status") == "diverged" else best


def _table_rows(table) -> Iterable[tuple[str, dict | None, float | None]]:
    if "best_val_loss" not in table.columns:
        raise ValueError(f"tried: a sweep table needs a best_val_loss column; columns: {', '.join(table.columns)}")
    columns = [c for c in table.columns if c in FIELDS]
    for i, row in table.iterrows():
        if str(row.get("status", "completed")) == "failed":
            continue
        cfg = _row_config(row, columns)
        best = row["best_val_loss"]
        diverged = str(row.get("status", "completed")) == "diverged"
        best = float(best) if _finite(best) and not diverged else None
        seed = row.get("seed")
        yield f"sweep row {i}" + (f" (seed {seed})" if seed is not None else ""), cfg, best


def _row_config(row, columns: list[str]) -> dict:
    run_dir = row.get("run_dir")
    if isinstance(run_dir, str) and (Path(run_dir) / "config.json").is_file():
        return TrainConfig.from_json(Path(run_dir) / "config.json").to_dict()
    cfg = {c: _plain(row[c]) for c in columns}
    if "epochs" not in cfg and "epochs_done" in row.index and _finite(row["epochs_done"]):
        cfg["epochs"] = int(row["epochs_done"])
    return cfg


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _plain(v: Any) -> Any:
    """A table cell as a plain Python value (NaN: None, as a missing grad_clip is stored)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


# -- comparing and applying ---------------------------------------------------------------------------------
def collect(tried: Any, base: dict) -> list[Alternative]:
    """The tried runs grouped by their changes against ``base`` (the diagnosed run's config)."""
    groups: dict[tuple, Alternative] = {}
    for label, cfg, best in _runs(tried):
        changes = _changes(cfg or {}, base)
        key = tuple(sorted((k, repr(v)) for k, v in changes.items()))
        alt = groups.setdefault(key, Alternative(changes, {k: base.get(k) for k in changes}))
        alt.values.append(best)
        alt.labels.append(label)
    return list(groups.values())


@dataclass
class Baseline:
    """What the alternatives are compared with (see the module's definitions)."""

    value: float | None
    text: str
    values: list = field(default_factory=list)  # the runs behind it (one: the diagnosed run)

    def overlaps(self, a: Alternative) -> bool:
        """Whether two groups of runs (seeds) overlap in range: a difference of means to take with care."""
        mine = [v for v in self.values if v is not None and math.isfinite(v)]
        theirs = [v for v in a.values if v is not None and math.isfinite(v)]
        return len(mine) > 1 and len(theirs) > 1 and min(theirs) <= max(mine) and min(mine) <= max(theirs)

    def verdict(self, a: Alternative) -> str:
        v = a.verdict(self.value)
        return f"{v} (the runs' ranges overlap)" if v in ("better", "worse") and self.overlaps(a) else v


def baseline(alternatives: list[Alternative], here: float | None) -> Baseline:
    """The value to compare with, its description and its runs (see the module's definitions)."""
    same = [a for a in alternatives if not a.changes and a.result is not None]
    if same and not (len(same[0].values) == 1 and same[0].result == here):  # not only the run itself
        a = same[0]
        return Baseline(a.result, f"{sig(a.result)} for this config (the mean of {len(a.values)} tried runs, "
                                  f"{sig(min(a.values))}-{sig(max(a.values))})", list(a.values))
    return Baseline(here, "no finite validation loss here" if here is None else f"{sig(here)} here", [here])


def measured_sentence(change: Change, matches: list[Alternative], base: Baseline) -> str:
    """The measurements of one suggested change and what follows from them: ``"lr 5e-6 was tried:
    best validation loss 0.7553 vs 0.4316 here, worse; not suggested."``"""
    if len(matches) == 1:
        a = matches[0]
        measured = (f"{a.description} was tried: best validation loss {a.result_text()} vs {base.text}, "
                    f"{base.verdict(a)}")
    else:
        each = and_list([f"{a.description} ({a.result_text()}, {base.verdict(a)})" for a in matches])
        measured = f"{each} were tried (best validation loss, against {base.text})"
    better = [a for a in matches if a.verdict(base.value) == "better"]
    if change.advise == "avoid":
        if better:
            return f"{measured}; this change measured better here, despite the usual advice against it."
        return f"{change.text[:-1]} ({measured})."
    if not better:
        return f"{measured}; not suggested."
    if len(matches) == 1:
        return f"{measured}; suggested."
    return f"{measured}; suggested: {min(better, key=lambda a: a.result).description}."


def contradicted_sentence(change: Change, against: list[Alternative], base: Baseline) -> str:
    """A proposed change that a better-measured alternative moved the other way: ``"lr 2e-5, grad_clip 2
    and scheduler_patience 5 was tried (best validation loss 0.4122 vs 0.4316 here, better): it moved lr
    the other way; not suggested until a run that changes lr alone says otherwise."``"""
    best = min(against, key=lambda a: a.result)
    return (f"{best.description} was tried (best validation loss {best.result_text()} vs {base.text}, "
            f"{base.verdict(best)}): it moved {change.field} the other way; not suggested until a run that "
            f"changes {change.field} alone says otherwise.")


def apply_alternatives(diagnosis: Diagnosis, tried: Any, base: dict, here: float | None) -> None:
    """Rewrite the findings' suggestions from the measured alternatives and list them in the report."""
    alternatives = collect(tried, base)
    ref = baseline(alternatives, here)
    for f in diagnosis.findings:
        for change in f.changes:
            matches = [a for a in alternatives if a.measures(change)]
            against = [a for a in alternatives if change.advise == "do" and a.opposes(change)
                       and a.verdict(ref.value) == "better"]
            if not matches and not against:
                continue
            sentence = measured_sentence(change, matches, ref) if matches else contradicted_sentence(change, against, ref)
            f.suggestion = (f.suggestion.replace(change.text, sentence) if change.text and change.text in f.suggestion
                            else f"{f.suggestion} {sentence}".strip())
            f.evidence.setdefault("tried", []).append({
                "field": change.field, "direction": change.direction, "advise": change.advise,
                "alternatives": [_record(a, ref) for a in matches or against],
                "contradicted": not matches})
    diagnosis.alternatives = [{**_record(a, ref), "sentence": _listing(a, ref)}
                              for a in sorted(alternatives, key=_order)]
    diagnosis.alternatives_note = (f"{len(alternatives)} alternative(s) from the tried runs, each compared on its best "
                                   f"validation loss with {ref.text}; better or worse means by more than "
                                   f"{TIE:.0%}. A suggestion is measured only by an alternative that changes that "
                                   "one setting.")


def _order(a: Alternative) -> tuple:
    return (len(a.changes) == 0, a.result is None, a.result if a.result is not None else 0.0)


def _record(a: Alternative, base: Baseline) -> dict:
    return {"changes": dict(a.changes), "before": dict(a.before), "best_val_loss": a.result,
            "runs": list(a.labels), "values": list(a.values), "verdict": a.verdict(base.value),
            "ranges_overlap": base.overlaps(a)}


def _names(labels: list[str]) -> str:
    return ", ".join(labels) if len(labels) <= 3 else f"{', '.join(labels[:2])}, ... ({len(labels)} runs)"


def _listing(a: Alternative, base: Baseline) -> str:
    if not a.changes:
        return f"The same config ({_names(a.labels)}): best validation loss {a.result_text()}."
    before = and_list([f"{k} {value_text(k, v)}" for k, v in a.before.items()])
    single = "" if len(a.changes) == 1 else " (several changes at once: not credited to any one)"
    return (f"{a.description} ({_names(a.labels)}; here {before}): best validation loss {a.result_text()} vs "
            f"{base.text}, {base.verdict(a)}{single}.")


__all__ = ["Alternative", "Baseline", "CLOSE", "IGNORED", "TIE", "apply_alternatives", "baseline", "collect",
           "config_fields",
           "contradicted_sentence", "measured_sentence", "value_text"]
