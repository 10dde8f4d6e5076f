"""Evaluation points named in the run's own units: "epoch 3" or "the evaluation at step 2,000".

``Units(unit, ids)``: ``unit`` is ``"epoch"`` (ids are epoch numbers, as nbtrain and Keras
log them), ``"step"`` (ids are the global steps evaluations were taken at: Hugging Face,
Lightning's validation every N steps) or ``"index"`` (ids count the evaluations from 1).
For ``"epoch"`` with whole epochs every text is the one nbtrain's reports always used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .formatting import and_list, epoch_span


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class Units:
    """How a run's evaluation points are named (see the module's docstring)."""

    unit: str = "epoch"
    ids: tuple = ()

    @property
    def whole_epochs(self) -> bool:
        return self.unit == "epoch" and all(float(i).is_integer() for i in self.ids)

    @property
    def noun(self) -> str:
        return "epoch" if self.whole_epochs else "evaluation"

    @property
    def nouns(self) -> str:
        return self.noun + "s"

    def count(self, n: int) -> str:
        """``"6 epochs"``, ``"1 evaluation"``."""
        return f"{n} {self.noun if n == 1 else self.nouns}"

    def number(self, point: Any) -> str:
        """The id alone: ``"3"``, ``"2,000"``, ``"1.5"``."""
        if self.unit == "step":
            return f"{int(point):,}"
        return f"{point:g}" if isinstance(point, float) else str(point)

    def at(self, point: Any) -> str:
        """``"epoch 3"``, ``"the evaluation at step 2,000"``, ``"the evaluation at epoch 1.5"``, ``"evaluation 3"``."""
        if self.whole_epochs:
            return f"epoch {point}"
        if self.unit == "index":
            return f"evaluation {point}"
        return f"the evaluation at {self.unit} {self.number(point)}"

    def end_of(self, point: Any) -> str:
        """Where a scheduler step happens: ``"the end of epoch 7"`` or ``"the evaluation at step 14,000"``."""
        return f"the end of {self.at(point)}" if self.whole_epochs else self.at(point)

    def span(self, points: Sequence[Any]) -> str:
        """``"epochs 2-5"`` / ``"epochs 1, 4 and 6"``, or ``"the 3 evaluations at steps 2,000-6,000"``."""
        points = list(points)
        if self.whole_epochs or not points:
            return epoch_span(points)
        if len(points) == 1:
            return self.at(points[0])
        index = [self.ids.index(p) for p in points] if all(p in self.ids for p in points) else []
        label = "" if self.unit == "index" else f" at {self.unit}s"
        if len(points) > 2 and index == list(range(index[0], index[0] + len(points))):
            return f"the {len(points)} evaluations{label} {self.number(points[0])}-{self.number(points[-1])}"
        return f"the evaluations{label} " + and_list([self.number(p) for p in points])

    def names(self, points: Sequence[Any]) -> str:
        """The points alone, for a parenthesis: ``"epochs 2-5"``, ``"steps 1,000-6,000"``, ``"evaluations 1-6"``."""
        points = list(points)
        if self.whole_epochs or not points:
            return epoch_span(points)
        word = "evaluation" if self.unit == "index" else self.unit
        if len(points) == 1:
            return f"{word} {self.number(points[0])}"
        index = [self.ids.index(p) for p in points] if all(p in self.ids for p in points) else []
        if len(points) > 2 and index == list(range(index[0], index[0] + len(points))):
            return f"{word}s {self.number(points[0])}-{self.number(points[-1])}"
        return f"{word}s " + and_list([self.number(p) for p in points])

    def some(self, points: Sequence[Any]) -> str:
        """``"epoch(s) 2, 4 and 5"`` or ``"the evaluation(s) at step(s) 2,000 and 4,000"``."""
        names = and_list([self.number(p) for p in points])
        if self.whole_epochs:
            return f"epoch(s) {names}"
        return f"evaluation(s) {names}" if self.unit == "index" else f"the evaluation(s) at {self.unit}(s) {names}"

    def future(self, position: int) -> Any:
        """The id of the point at ``position`` (0-based; may lie past the end, when the points
        are evenly spaced), or None when it cannot be told."""
        n = len(self.ids)
        if 0 <= position < n:
            return self.ids[position]
        if n == 0:
            return position if self.unit == "epoch" else None
        gaps = {round(b - a, 9) for a, b in zip(self.ids, self.ids[1:])}
        if n >= 2 and len(gaps) != 1:
            return None
        gap = gaps.pop() if gaps else 1
        value = self.ids[-1] + (position - n + 1) * gap
        return int(value) if float(value).is_integer() else value

    def end_of_future(self, position: int) -> str:
        """``end_of`` the point at ``position``, or ``"the Nth evaluation from now"``."""
        point = self.future(position)
        if point is not None:
            return self.end_of(point)
        return f"the {_ordinal(position - len(self.ids) + 1)} evaluation from now"


__all__ = ["Units"]
