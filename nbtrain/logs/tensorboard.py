"""TensorBoard event files: scalars by tag.

A folder of ``events.out.tfevents.*`` files (or one such file; or a folder with a folder
of them one or two levels below, as the Hugging Face Trainer's ``runs/<date>`` and
Lightning's ``lightning_logs/version_N``). Scalars are read with TensorBoard's own ``EventAccumulator`` (every value
kept, no sampling), so it needs the ``tensorboard`` package (``pip install
nbtrain[tensorboard]``), imported only here.

Tags are mapped by ``aliases.TENSORBOARD_STEPS`` (x axis: the global step; nbtrain's
``step/*``, the Trainer's ``train/*`` and ``eval/loss``, Lightning's names) and
``aliases.TENSORBOARD_EPOCHS`` (x axis: the epoch; nbtrain's ``epoch/*``; ``columns=`` keys
under ``epoch/`` map tags of this axis). All tags at one
step form one record, split into a step row and an evaluation row (``rows.sparse_rows``);
``train/epoch`` or ``epoch`` gives the rows at that step their epoch. Values are float32,
as TensorBoard stores them. Text and other tags are not read.
"""

from __future__ import annotations

from pathlib import Path

from ..training.history import History
from .aliases import TENSORBOARD_EPOCHS, TENSORBOARD_STEPS, resolve
from .errors import NotThisFormat
from .rows import epoch_rows, make_history, sparse_rows
from .values import BadValue, convert

EVENTS = "tfevents"
_MAX_DEPTH = 2


def _has_events(folder: Path) -> bool:
    return any(EVENTS in p.name and p.is_file() for p in folder.iterdir())


def locate(path: Path) -> tuple[Path, list[str]]:
    """The folder of event files to read: ``path`` itself, or the one folder below it (at
    most two levels: ``runs/<date>``, ``lightning_logs/version_N``) that holds event files; with several, the latest written, noted."""
    if path.is_file():
        if EVENTS not in path.name:
            raise NotThisFormat("not an events.out.tfevents.* file")
        return path, []
    if _has_events(path):
        return path, []
    found = [p for depth in range(1, _MAX_DEPTH + 1) for p in path.glob("/".join(["*"] * depth))
             if p.is_dir() and _has_events(p)]
    if not found:
        raise NotThisFormat("no events.out.tfevents.* file, here or below")
    if len(found) == 1:
        return found[0], []
    latest = max(found, key=lambda p: max(f.stat().st_mtime for f in p.iterdir() if EVENTS in f.name))
    names = ", ".join(str(p.relative_to(path)) for p in found)
    return latest, [f"{len(found)} folders of event files ({names}): read {latest.relative_to(path)}, the latest"]


def _accumulator(path: Path):
    try:
        from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
    except ImportError as exc:
        raise ImportError("reading TensorBoard event files needs the tensorboard package: pip install "
                          f"nbtrain[tensorboard] (or pip install tensorboard); the import failed with: {exc}") from exc
    accumulator = EventAccumulator(str(path), size_guidance={SCALARS: 0})
    accumulator.Reload()
    return accumulator


def read(path: Path, columns: dict, notes: list[str]) -> History:
    """The scalars of an event folder (or file) as a History."""
    accumulator = _accumulator(path)
    tags = list(accumulator.Tags().get("scalars", []))
    if not tags:
        raise NotThisFormat("no scalar in the event files")
    on_epochs = [t for t in tags if t.startswith("epoch/")]
    user_epochs = {k: v for k, v in columns.items() if k.startswith("epoch/")}
    user_steps = {k: v for k, v in columns.items() if not k.startswith("epoch/")}
    by_epoch, epoch_notes = resolve(on_epochs, TENSORBOARD_EPOCHS, user_epochs) if on_epochs else ({}, [])
    by_step, step_notes = resolve([t for t in tags if t not in on_epochs], TENSORBOARD_STEPS, user_steps)
    at_step = _gather(accumulator, by_step, "step")
    at_epoch = _gather(accumulator, by_epoch, "epoch")
    steps, evals, _ = sparse_rows(at_step[s] for s in sorted(at_step))
    evals += epoch_rows([at_epoch[e] for e in sorted(at_epoch)])[0]
    if not steps and not evals:
        raise NotThisFormat(f"no tag nbtrain reads (tags: {sorted(tags)[:12]})")
    mapping = {**by_step, **by_epoch}
    notes = notes + step_notes + epoch_notes
    return make_history(steps, evals, fmt="tensorboard", path=path, columns=mapping, notes=notes)


def _gather(accumulator, mapping: dict, axis: str) -> dict:
    """``{x: record}``: every mapped tag's value at each x (the step, or the epoch)."""
    records: dict = {}
    for tag, target in mapping.items():
        for event in accumulator.Scalars(tag):
            record = records.setdefault(event.step, {axis: event.step})
            try:
                record[target] = convert(target, event.value)
            except BadValue:
                continue
    return records


__all__ = ["EVENTS", "locate", "read"]
