"""The demo's side-by-side table: one row per round, one format per column, 100 columns wide.

The cells are ``views.tables.format_cell``'s (the project's one way to write a run's numbers:
learning rates as ``2e-5``, shares as whole percentages, counts as integers), so the console,
summary.md and the notebooks agree, with two exceptions that keep one precision per column:
losses take the decimals that give the column's largest value 4 significant figures
(``loss_decimals``), and growth ratios keep their trailing zeros (``growth_text``: ``4.00×``).
The LR appears once: the ``LR cuts`` cell names the final LR when the scheduler cut it
(``1 → 2e-6``), so no ``final_lr`` column repeats the start LR. ``console_table`` aligns the
cells in plain text (``WIDTH`` columns at most for the demo's two rounds, checked by the tests);
``markdown_table`` writes the same headers and cells as a markdown table. ``LEGEND`` says what
each short header means.
"""

from __future__ import annotations

import math
import textwrap
from typing import Sequence

from ..views.tables import format_cell
from .outcome import Outcome

WIDTH = 100
# (summary key, header); the settings first, then what the run measured
COLUMNS = (
    ("lr", "lr"),
    ("grad_clip", "clip"),
    ("patience", "patience"),
    ("best_val_loss", "best val"),
    ("best_epoch", "best at"),
    ("final_val_loss", "last val"),
    ("clip_fraction", "clipped"),
    ("grad_norm_growth_p50", "growth"),
    ("lr_cuts", "LR cuts"),
)
LEGEND = ("lr: the learning rate at the start; clip: the clip threshold; patience: the plateau scheduler's; "
          "best val, last val: the best and the last epoch's validation loss; best at: the epoch of the best "
          "(0-based); clipped: share of all optimizer steps clipped; growth: the median pre-clip gradient norm "
          "of the last third of the epochs over epoch 0's; LR cuts: the scheduler's cuts (→ the final LR).")


def growth_text(x: float | None) -> str:
    """A growth ratio to 3 significant figures, trailing zeros kept (``4.00×`` beside ``3.48×``:
    one precision per column, where ``formatting.times`` writes ``4×``)."""
    return "n/a" if x is None else f"{float(x):#.3g}×"


def loss_decimals(values: Sequence[float | None]) -> int:
    """Decimals for a column of losses: 4 significant figures for its largest value, the same
    decimals for every row (``0.909`` above ``1.007``, never ``0.9088`` above ``1.007``)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    return max(0, 3 - math.floor(math.log10(max(finite)))) if finite else 4


def _cell(o: Outcome, key: str, decimals: dict[str, int]) -> str:
    value = o.summary.get(key)
    if key == "lr_cuts":
        return _lr_cuts_cell(o)
    if key == "grad_norm_growth_p50":
        return growth_text(value)
    if key in decimals and value is not None and math.isfinite(value):
        return f"{value:.{decimals[key]}f}"
    return format_cell(key, value, o.summary)


def _lr_cuts_cell(o: Outcome) -> str:
    s = o.summary
    cell = format_cell("lr_cuts", s.get("lr_cuts"), s)
    if s.get("lr_cuts") and s.get("final_lr") is not None:
        cell += f" → {format_cell('final_lr', s['final_lr'], s)}"
    return cell


def table_cells(outcomes: Sequence[Outcome]) -> tuple[list[str], list[list[str]]]:
    """The headers (``run`` first) and one row of cells per round, as both tables show them."""
    headers = ["run"] + [h for _, h in COLUMNS]
    decimals = {key: loss_decimals([o.summary.get(key) for o in outcomes]) for key, _ in COLUMNS if "loss" in key}
    return headers, [[o.name] + [_cell(o, key, decimals) for key, _ in COLUMNS] for o in outcomes]


def console_table(outcomes: Sequence[Outcome]) -> str:
    """The rounds as aligned plain text (run names left, numbers right), then the legend
    wrapped to ``WIDTH`` columns."""
    headers, rows = table_cells(outcomes)
    widths = [max(len(c) for c in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        parts = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    body = [line(headers)] + [line(r) for r in rows]
    return "\n".join(body + [""] + textwrap.wrap(LEGEND, WIDTH))


def markdown_table(outcomes: Sequence[Outcome]) -> str:
    """The same headers and cells as ``console_table``, as a markdown table, with the legend below."""
    headers, rows = table_cells(outcomes)
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out + ["", LEGEND])


__all__ = ["COLUMNS", "LEGEND", "WIDTH", "console_table", "growth_text", "loss_decimals", "markdown_table",
           "table_cells"]
