"""The dashboard's texts: the status line of a run, and the diagnosis panel when it ends.

The panel shows ``nbtrain.diagnose`` and ``nbtrain.check_expectations`` of the finished
run as HTML (Markdown rendered with mistune when it is installed, else as plain text).
"""

from __future__ import annotations

import html
import time
from typing import Callable

from ...training.config import TrainConfig
from ...training.trainer import Run
from .session import RunRecord


def describe(c: TrainConfig) -> str:
    """The settings the controls show, in one line (for the status after Load)."""
    clip = "off" if c.grad_clip is None else f"{c.grad_clip:g}"
    return (
        f"lr {c.lr:g}, clip {clip}, patience {c.scheduler_patience}, {c.scheduler}, batch {c.batch_size}"
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
    """``Run #n: epoch e/E, step s, k epoch(s) done, r steps/s (device, precision)`` ("" before the first step)."""
    n_steps, n_epochs, spe = len(record.steps), len(record.epochs), record.steps_per_epoch
    if not n_steps:
        return ""
    elapsed = time.perf_counter() - (record.fit_started or record.started)
    epoch = min(n_steps // max(spe, 1), record.config.epochs - 1)
    return (f"Run #{record.index}: epoch {epoch + 1}/{record.config.epochs}, step {n_steps:,}, "
            f"{n_epochs} epoch(s) done, {n_steps / max(elapsed, 1e-9):.0f} steps/s ({record.ran_on})")


def diagnosis_html(record: RunRecord) -> str:
    """The diagnosis panel of a finished run: its header, message, diagnosis and expectations."""
    from ...diagnosis.diagnostics import diagnose
    from ...diagnosis.expectations import check_expectations

    run = record.run
    parts = [f"<h4>Run #{record.index}: {html.escape(record.label)} ({html.escape(run.status)})</h4>"]
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
    # Reports use h1-h3; inside a panel below the plots, smaller headings read better.
    for level in (3, 2, 1):
        out = out.replace(f"<h{level}>", f"<h{level + 3}>").replace(f"</h{level}>", f"</h{level + 3}>")
    return out


__all__ = ["describe", "diagnosis_html", "end_status", "failure_html", "markdown_to_html", "running_status"]
