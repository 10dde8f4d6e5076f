"""The round and its write-up: ``Round``, ``Round.to_markdown()`` and ``round-N.md``.

The markdown follows the write-up that started nbtrain ("Training Fixes - Round 2"), in its
order: Issues Identified, Fixes Applied, Expected Improvements, Configuration Summary,
Monitoring Points, If Issues Persist; then a Verification section with every candidate's
per-seed numbers, the probes and the time used. Every number in it was measured: the input
run's diagnosis, the probes, and the paired runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnosis.formatting import sig
from ..files import atomic_write_text, to_json_safe, write_json
from ..training.config import TrainConfig
from .candidates import UNTESTED, Candidate, Comparison, epochs_text, value_text
from .expectations import Expectation
from .rulebook import NOT_AVAILABLE

SECTIONS = ("Issues Identified", "Fixes Applied", "Expected Improvements", "Configuration Summary",
            "Monitoring Points", "If Issues Persist", "Verification")
SUMMARY_FIELDS = ("lr", "grad_clip", "scheduler", "scheduler_patience", "cosine_t0", "batch_size",
                  "grad_accum_steps", "weight_decay", "epochs")


@dataclass
class Round:
    """The next round: the proposed config, every candidate with its measured effect, the checked expectations."""

    number: int
    config: TrainConfig  # the proposed config (the unchanged one when nothing was verified)
    before: TrainConfig  # the input run's config
    candidates: list[Candidate]
    expectations: list[Expectation]
    chosen: list[Candidate] = field(default_factory=list)  # the verified changes the round makes
    findings: list = field(default_factory=list)  # the input run's findings (diagnosis and probes)
    unaddressed: list[str] = field(default_factory=list)  # finding codes no rule could address
    final: Comparison | None = None  # the round vs the unchanged config at full length
    monitoring: list[str] = field(default_factory=list)
    seeds: tuple = ()
    screen_epochs: int = 0
    budget_s: float = 0.0
    time_used_s: float = 0.0
    runs_trained: int = 0
    notes: list[str] = field(default_factory=list)  # the combination's fate, budget notes
    probe_notes: list[str] = field(default_factory=list)
    source: str = ""  # the input run: its folder or label
    path: Path | None = None  # round-N.md, once written

    @property
    def changes(self) -> dict:
        return {k: v for k, v in self.config.to_dict().items()
                if k not in ("name",) and getattr(self.before, k) != v}

    # -- markdown --------------------------------------------------------------------------------
    def to_markdown(self, heading_level: int = 1) -> str:
        """The write-up; its title is a heading of ``heading_level`` (1: ``#``), its sections one below
        (3 fits it under a notebook's ``##`` section)."""
        if isinstance(heading_level, bool) or not isinstance(heading_level, int) or not 1 <= heading_level <= 4:
            raise ValueError(f"heading_level must be an int from 1 to 4, got {heading_level!r}")
        seeds = ", ".join(map(str, self.seeds))
        lines = [f"# Training Fixes - Round {self.number}", "",
                 f"Written by `nbtrain.next_round` from {self.source or 'the input run'} "
                 f"({epochs_text(self.before.epochs)}). Every number below was measured: the diagnosis of that run, "
                 "the "
                 f"probes, and paired runs of each change against the unchanged config from the same seeds "
                 f"({seeds}); {self.runs_trained} runs trained in {self.time_used_s:.0f} s of a "
                 f"{self.budget_s:.0f} s budget.", ""]
        for part in (self._issues, self._fixes, self._expected, self._summary, self._monitoring, self._persist,
                     self._verification):
            lines += part() + [""]
        shift = "#" * (heading_level - 1)
        return "\n".join(shift + line if line.startswith("#") else line for line in lines).rstrip() + "\n"

    def _issues(self) -> list[str]:
        lines = ["## Issues Identified", ""]
        if not self.findings:
            return lines + ["The diagnosis found no issue in the input run."]
        for i, f in enumerate(self.findings, 1):
            lines += [f"### {i}. {f.title}", f"`{f.code}` ({f.severity})", "", f"- **Problem**: {f.problem}"]
            if f.evidence_text:
                lines += ["- **Evidence**:"] + [f"  - {e}" for e in f.evidence_text]
            lines += [f"- **Root Cause**: {f.explanation}", ""]
        return lines

    def _fixes(self) -> list[str]:
        lines = ["## Fixes Applied", ""]
        if not self.chosen:
            lines.append("No change beat the unchanged config on most seeds: this round keeps the configuration "
                         "as it was (see If Issues Persist and Verification).")
        for i, c in enumerate(self.chosen, 1):
            lines += [f"### {i}. {c.name}", f"**Change**: {c.diff_text(self.before)}", "",
                      f"**Rationale** (`{'`, `'.join(c.findings)}`): {c.rationale}", "", f"**Source**: {c.source}", "",
                      f"**Measured effect**: {c.full.describe() if c.full else 'n/a'}.", ""]
            lines += _seed_table(c.full)
        if self.final is not None and len(self.chosen) > 1:
            lines += [f"**All changes together**: {self.final.describe()}.", ""] + _seed_table(self.final)
        lines += [n for note in self.notes for n in (note, "")]
        return lines

    def _expected(self) -> list[str]:
        lines = ["## Expected Improvements", ""]
        if not self.expectations:
            return lines + ["No change was verified, so the round makes no prediction."]
        lines += [f"Predicted from the screening runs ({epochs_text(self.screen_epochs)}), checked on the final "
                  f"verification runs ({epochs_text(self.config.epochs)}, seeds {', '.join(map(str, self.seeds))}):",
                  "",
                  "| # | Expectation | Derived from | Status | Measured |", "|---|---|---|---|---|"]
        for i, e in enumerate(self.expectations, 1):
            lines.append(f"| {i} | {_cell(e.claim)} | {_cell(e.basis)} | **{e.status}** | {_cell(e.detail)} |")
        held = sum(e.held for e in self.expectations)
        return lines + ["", f"{held} of {len(self.expectations)} held."]

    def _summary(self) -> list[str]:
        changed = set(self.changes)
        fields = [f for f in SUMMARY_FIELDS if f in changed or f != "cosine_t0"]
        before = [f"- {f}: {value_text(f, getattr(self.before, f))}" for f in fields]
        after = [f"- {f}: {value_text(f, getattr(self.config, f))}" + (" (changed)" if f in changed else "")
                 for f in fields]
        return ["## Configuration Summary", "", "**Before:**", *before, "", "**After:**", *after]

    def _monitoring(self) -> list[str]:
        lines = ["## Monitoring Points", ""]
        if not self.monitoring:
            return lines + ["No verification runs of a changed config: nothing new to watch."]
        lines.append(f"When you run round {self.number}, watch for (ranges from the final verification runs):")
        return lines + [""] + [f"{i}. {p}" for i, p in enumerate(self.monitoring, 1)]

    def _persist(self) -> list[str]:
        lines = ["## If Issues Persist", ""]
        rest = [c for c in self.candidates if c not in self.chosen]
        measured = sorted((c for c in rest if c.effect is not None), key=lambda c: c.effect)
        if measured:
            lines.append("Changes tried that are not in this round, best measured effect first:")
            lines += [""] + [f"{i}. **{c.name}**: median change {c.effect:+.0%}; {c.note}"
                             for i, c in enumerate(measured, 1)]
        untested = [c for c in rest if c.effect is None]
        if untested:
            lines += ["", "Not measured, so not recommended (try them with a larger budget):", ""]
            lines += [f"- {c.name}: {c.note}" for c in untested]
        if self.unaddressed:
            lines += ["", f"Findings no rule turns into a config change (look at them yourself): "
                          f"{', '.join(f'`{c}`' for c in self.unaddressed)}."]
        lines += ["", "Not available as a config change: " + "; ".join(NOT_AVAILABLE.values()) + "."]
        return lines

    def _verification(self) -> list[str]:
        lines = ["## Verification", "",
                 f"Each candidate was screened for {epochs_text(self.screen_epochs)} against the same first "
                 f"{epochs_text(self.screen_epochs)} of the unchanged config (same seeds), then the best per setting "
                 f"at full length ({epochs_text(self.before.epochs)}). A change counts only when it wins on most "
                 "seeds.", "",
                 "| Candidate | Finding | Source | Screen | Full length | Status |", "|---|---|---|---|---|---|"]
        for c in self.candidates:
            screen = c.screen.describe() if c.screen else "not run"
            full = c.full.describe() if c.full else "not run"
            lines.append(f"| {_cell(c.name)} | `{c.finding}` | {_cell(c.source)} | {screen} | {full} | "
                         f"**{c.status}** |")
        lines += ["", "Per seed (best validation loss, unchanged → changed):", ""]
        for c in self.candidates:
            for label, comp in (("screen", c.screen), ("full length", c.full)):
                if comp is not None:
                    lines.append(f"- {c.name}, {label}: {comp.per_seed()}")
        if not any(c.status != UNTESTED for c in self.candidates):
            lines.append("- none measured")
        lines += ["", "Probes:", ""] + [f"- {n}" for n in self.probe_notes or ["none run"]]
        lines += ["", f"Time: {self.time_used_s:.0f} s used of a {self.budget_s:.0f} s budget; "
                      f"{self.runs_trained} runs trained (runs read back from an earlier call cost nothing)."]
        return lines

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def to_dict(self) -> dict:
        return to_json_safe({
            "number": self.number, "config": self.config.to_dict(), "before": self.before.to_dict(),
            "seeds": list(self.seeds), "screen_epochs": self.screen_epochs, "budget_s": self.budget_s,
            "time_used_s": self.time_used_s, "runs_trained": self.runs_trained,
            "candidates": [_candidate_dict(c) for c in self.candidates],
            "expectations": [vars(e) for e in self.expectations], "notes": self.notes,
        })

    def write(self, out: Any) -> Path:
        """Write ``round-N.md``, ``round-N.json`` and ``round-N-config.json`` (the proposed
        TrainConfig, for ``nbtrain train --config``) into ``out``, each atomically."""
        out = Path(out)
        self.path = atomic_write_text(out / f"round-{self.number}.md", self.to_markdown())
        write_json(out / f"round-{self.number}.json", self.to_dict(), indent=1)
        self.config.to_json(out / f"round-{self.number}-config.json")
        return self.path

    def __repr__(self) -> str:
        held = sum(e.held for e in self.expectations)
        return (f"Round({self.number}, changes={self.changes}, candidates={len(self.candidates)}, "
                f"expectations held {held}/{len(self.expectations)})")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _seed_table(comp: Comparison | None) -> list[str]:
    if comp is None:
        return []
    rows = ["| seed | unchanged | changed | change |", "|---|---|---|---|"]
    for s in comp.seeds:
        rel = "n/a" if s.relative is None else f"{s.relative:+.1%}"
        rows.append(f"| {s.seed} | {sig(s.baseline)} | {sig(s.candidate)} | {rel} |")
    return rows + [""]


def _candidate_dict(c: Candidate) -> dict:
    def comp(x: Comparison | None):
        if x is None:
            return None
        return {"epochs": x.epochs, "wins": x.wins, "effect": x.effect, "complete": x.complete,
                "seeds": [vars(s) for s in x.seeds]}

    return {"name": c.name, "changes": c.changes, "knob": c.knob, "findings": list(c.findings),
            "rationale": c.rationale, "source": c.source, "status": c.status, "note": c.note,
            "screen": comp(c.screen), "full": comp(c.full)}


__all__ = ["Round", "SECTIONS"]
