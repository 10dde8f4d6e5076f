"""The dashboard's texts: the status line of a run, and the diagnosis panel when it ends.

The panel shows ``nbtrain.diagnose`` and ``nbtrain.check_expectations`` of the finished
run as HTML (Markdown rendered with mistune when it is installed, else as plain text). Its
headings are never smaller than its text (``HEADING_SIZES``). Epochs are numbered from 0,
as in every report: ``epoch 3 (of 0-6)``.
"""

from __future__ import annotations

import html
import time
from typing import Callable

from ...training.config import TrainConfig
from ...training.trainer import Run
from ..livepanel import lr_text
from .session import RunRecord

# The panel's headings: the run's header, then the reports' levels 1-3, each as an HTML level
# and a font size relative to the panel's text (browsers draw h5 and h6 smaller than text).
HEADING_SIZES = {0: ("h3", 1.3), 1: ("h4", 1.2), 2: ("h5", 1.1), 3: ("h6", 1.0)}


def describe(c: TrainConfig) -> str:
    """The settings the controls show, in one line (for the status after Load)."""
    clip = "off" if c.grad_clip is None else f"{c.grad_clip:g}"
    return (
        f"lr {lr_text(c.lr)}, clip {clip}, patience {c.scheduler_patience}, {c.scheduler}, batch {c.batch_size}"
        f" x {c.grad_accum_steps} accumulation, {c.epochs} epochs, seed {c.seed}, device {c.device},"
        f" precision {c.precision}"
    )


def end_status(record: RunRecord) -> str:
    """``Run #n <status>: E epoch(s), S steps in T s (device, precision P); last val loss L.``"""
    run = record.run
    h = run.history
    took = record.ended - record.started
    text = (f"Run #{record.index} {run.status}: {len(h.epochs)} epoch(s), {len(h.steps):,} steps in {took:.1f} s"
            f" ({record.ran_on})")
    if h.epochs:
        text += f"; last val loss {h.epochs[-1]['val_loss']:.4f}"
    return text + "."


def running_status(record: RunRecord) -> str:
    """``Run #n: epoch 3 (of 0-6), 1,750 steps done, 95 steps/s (device, precision P)``: the
    epoch in progress, numbered from 0 ("" before the first step)."""
    n_steps, spe = len(record.steps), record.steps_per_epoch
    if not n_steps:
        return ""
    elapsed = time.perf_counter() - (record.fit_started or record.started)
    last = record.config.epochs - 1
    epoch = min(n_steps // max(spe, 1), last)
    return (f"Run #{record.index}: epoch {epoch} (of 0-{last}), {n_steps:,} steps done, "
            f"{n_steps / max(elapsed, 1e-9):.0f} steps/s ({record.ran_on})")


def diagnosis_html(record: RunRecord) -> str:
    """The diagnosis panel of a finished run: its header, message, diagnosis and expectations."""
    from ...diagnosis.diagnostics import diagnose
    from ...diagnosis.expectations import check_expectations

    run = record.run
    parts = [heading(0, f"Run #{record.index}: {html.escape(record.settings)} ({html.escape(run.status)})")]
    if run.message:
        parts.append(f"<p>{html.escape(run.message)}</p>")
    if not run.history.epochs:
        parts.append("<p>No complete epoch, so there is nothing to diagnose yet.</p>")
    else:
        parts.append(_section("Diagnosis", diagnose, run))
        parts.append(_section("Expectations", check_expectations, run))
    return "\n".join(parts)


def failure_html(record: RunRecord) -> str:
    """The diagnosis panel of a run that raised."""
    return f"<p>Run #{record.index} failed: {html.escape(record.error)}</p>"


def _section(title: str, check: Callable, run: Run) -> str:
    """``check(history, config)``'s report as HTML, or why it failed."""
    try:
        return markdown_to_html(check(run.history, run.config).to_markdown())
    except Exception as exc:  # a diagnosis failing must not take the dashboard down
        return f"<p><b>{title} failed:</b> {html.escape(f'{type(exc).__name__}: {exc}')}</p>"


def markdown_to_html(text: str) -> str:
    """Markdown to HTML with mistune when it is installed (JupyterLab brings it), else as text."""
    try:
        import mistune

        out = mistune.create_markdown(plugins=["table", "strikethrough"])(text)
    except Exception:
        return f"<pre style='white-space:pre-wrap'>{html.escape(text)}</pre>"
    # Reports use h1-h3; under the run's header they become h4-h6, none smaller than the text.
    for level in (3, 2, 1):
        tag, size = HEADING_SIZES[level]
        out = out.replace(f"<h{level}>", _open(tag, size)).replace(f"</h{level}>", f"</{tag}>")
    return out


def heading(level: int, text_html: str) -> str:
    """``text_html`` as the panel's heading of ``level`` (0: the run's header; 1-3: a report's)."""
    tag, size = HEADING_SIZES[level]
    return f"{_open(tag, size)}{text_html}</{tag}>"


def _open(tag: str, size: float) -> str:
    return f'<{tag} style="font-size:{size:g}em;margin:0.6em 0 0.3em">'


__all__ = ["HEADING_SIZES", "describe", "diagnosis_html", "end_status", "failure_html", "heading", "markdown_to_html",
           "running_status"]
