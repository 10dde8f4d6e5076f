"""``nbtrain demo``: train round 1 and round 2 from the same seed, compare, judge, write it up.

``run_demo(out)`` trains each config into ``out/<name>``, then writes ``out/summary.md``
(the verdict at the top, the side-by-side table, round 2's expectations checked, each round's
diagnosis nested under its own heading) and ``out/summary.png`` (``views.rounds_figure``), and
prints the table and the verdict through ``sink``. Each round is diagnosed with the other as an
alternative already measured (``diagnose(..., tried=...)``), so its advice uses that result.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..diagnosis.diagnostics import diagnose
from ..diagnosis.expectations import check_expectations
from ..diagnosis.formatting import sci
from ..files import atomic_write_text
from ..training import presets
from ..training.config import TrainConfig
from ..training.runfolder import LoadedRun, load_run
from .outcome import Outcome, outcome
from .table import WIDTH, console_table, markdown_table
from .verdict import verdict

TITLE = "nbtrain demo: round 1 vs round 2"


@dataclass
class DemoResult:
    """What ``run_demo`` wrote and said."""

    out: Path
    outcomes: list[Outcome]
    verdict: str
    table: str  # the console table (with its legend)
    summary_md: Path
    summary_png: Path


def settings_text(config: TrainConfig) -> str:
    """``"lr 2e-5, clip 2, patience 5, epochs 0-6, seed 0"``: what a round trains with."""
    clip = "off" if config.grad_clip is None else f"{config.grad_clip:g}"
    return (f"lr {sci(config.lr)}, clip {clip}, patience {config.scheduler_patience}, "
            f"epochs 0-{config.epochs - 1}, seed {config.seed}")


def fill(text: str, width: int = WIDTH) -> str:
    """``text`` wrapped to ``width`` columns, never inside ``epoch 4 (of 0-6)``."""
    kept = re.sub(r"(?:(?<=\bepoch)|(?<=\bepochs)|(?<=\bof)) (?=\d)|(?<=\d) (?=\(of )", "\u00a0", text)
    return textwrap.fill(kept, width).replace("\u00a0", " ")


def _check_configs(configs: Sequence[TrainConfig]) -> list[TrainConfig]:
    configs = list(configs)
    if len(configs) != 2 or not all(isinstance(c, TrainConfig) for c in configs):
        raise ValueError(f"configs must be two TrainConfigs (before, after), got {configs!r:.120}")
    names = [c.name for c in configs]
    if not all(names) or names[0] == names[1]:
        raise ValueError(f"configs must have two different, non-empty names (their run folders), got {names!r}")
    return configs


def summary_markdown(loaded: Sequence[LoadedRun], outcomes: Sequence[Outcome], text: str, out: Path) -> str:
    """summary.md: the verdict first, then the table, the expectations and each diagnosis."""
    before, after = loaded
    expectations = check_expectations(after.history, after.config, baseline=before.history)
    parts = [
        f"# {TITLE}", "", f"**Verdict.** {text}", "",
        f"Run folders: {', '.join(f'`{out / r.name}`' for r in loaded)}; figure: `{out / 'summary.png'}`.", "",
        "## Side by side", "", markdown_table(outcomes), "",
        f"## The write-up's expectations, checked on {after.name}", "", expectations.to_markdown().rstrip(),
    ]
    for run, other in ((before, after), (after, before)):
        report = diagnose(run.history, run.config, tried=[other])
        parts += ["", report.to_markdown(title=f"Diagnosis of {run.name}", heading_level=2).rstrip()]
    return "\n".join(parts) + "\n"


def run_demo(out: str | os.PathLike = "runs", configs: Sequence[TrainConfig] | None = None, progress: bool = False,
             sink: Callable[[str], None] | None = print) -> DemoResult:
    """Train ``configs`` (default ``presets.ROUND1`` and ``ROUND2``) into ``out``, write
    summary.md and summary.png there, and say the table and the verdict through ``sink``."""
    from ..training.trainer import train
    from ..views.rounds_figure import plot_rounds

    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path, got {type(out).__name__}: {out!r}")
    out = Path(out)
    configs = _check_configs(configs if configs is not None else (presets.ROUND1, presets.ROUND2))
    say = sink or (lambda _line: None)
    statuses = []
    for config in configs:
        say(f"== training {config.name} ({settings_text(config)}) -> {out / config.name}")
        statuses.append(train(config, out=out / config.name, progress=progress, sink=sink).status)
    loaded = [load_run(out / c.name) for c in configs]
    outcomes = [outcome(r.name, r.history, r.config, s) for r, s in zip(loaded, statuses)]
    text = verdict(*outcomes)
    png = out / "summary.png"
    plot_rounds({r.name: r for r in loaded}, png=png)
    md = out / "summary.md"
    atomic_write_text(md, summary_markdown(loaded, outcomes, text, out))
    table = console_table(outcomes)
    say("")
    say(table)
    say("")
    say(fill(f"Verdict: {text}"))
    say("")
    say(f"summary written to {md}; figure written to {png}")
    return DemoResult(out, outcomes, text, table, md, png)


__all__ = ["DemoResult", "TITLE", "run_demo", "summary_markdown"]
