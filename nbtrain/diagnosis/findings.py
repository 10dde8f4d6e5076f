"""Findings and the diagnosis report: stable codes, severities, evidence, the markdown.

The report (``Diagnosis.to_markdown()``) follows the write-up's structure: issues (problem,
evidence, root cause), suggested fixes (change, rationale), what to monitor; and, when
``diagnose`` was given alternatives already measured (``tried``), what they measured.

A finding's ``changes`` are the config changes its suggestion proposes (``advise="do"``) or
advises against (``"avoid"``), each with the sentence of the suggestion that states it
(``Change.text``), so that a measured alternative can replace that sentence with its result
(``nbtrain.diagnosis.alternatives``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..files import to_json_safe, to_python

# -- finding codes (stable: tests, notebooks and the CLI's JSON rely on them) -----------
NON_FINITE = "NON_FINITE"
LR_NOT_ADAPTING = "LR_NOT_ADAPTING"
RUN_TOO_SHORT_FOR_PATIENCE = "RUN_TOO_SHORT_FOR_PATIENCE"
SCHEDULER_MISMATCH = "SCHEDULER_MISMATCH"
GRADIENT_GROWTH = "GRADIENT_GROWTH"
HEAVY_CLIPPING = "HEAVY_CLIPPING"
VAL_FLUCTUATING = "VAL_FLUCTUATING"
OVERFITTING = "OVERFITTING"
TRAIN_LOSS_PLATEAU = "TRAIN_LOSS_PLATEAU"
GRADIENT_SPIKES = "GRADIENT_SPIKES"
LOSS_SPIKES = "LOSS_SPIKES"
ZERO_GRADIENTS = "ZERO_GRADIENTS"

CODES: dict[str, str] = {
    NON_FINITE: "a logged loss, gradient norm or LR is NaN or infinite (values not logged never count); a "
    "non-finite loss is divergence (critical), non-finite gradient norms with finite losses (and rows flagged "
    "skipped) are the loss scaler's skipped steps under fp16 (info, or a warning when over 5% of the steps)",
    LR_NOT_ADAPTING: "plateau scheduler, LR unchanged while the validation loss has not beaten its best "
    "(by the scheduler's threshold) for 2+ epochs; gives the scheduler's real state and next cut",
    RUN_TOO_SHORT_FOR_PATIENCE: "fewer than patience + 2 epochs and the validation loss stalled at the end: "
    "ReduceLROnPlateau could not have cut the LR in this run",
    SCHEDULER_MISMATCH: "the logged LR differs from what ReduceLROnPlateau with the given settings produces",
    GRADIENT_GROWTH: "pre-clip gradient norms grew at least 2x (median, 90th percentile or largest of the last third "
    "of the epochs over the first epoch's, as in summarize) with a rising log-linear trend across epochs",
    HEAVY_CLIPPING: "more than half of the optimizer steps were clipped, overall or in the last epoch (from step "
    "flags or clip_fraction; else from grad_norm_p50 above the threshold)",
    VAL_FLUCTUATING: "validation loss 2+ epochs past its best without the overfitting pattern; the evidence "
    "separates up-and-down noise (swing, scatter around the trend) from a one-way stall",
    OVERFITTING: "over the last epochs the training loss falls while the validation loss rises",
    TRAIN_LOSS_PLATEAU: "training loss improved by less than 1% over its previous best in the last 3 epochs",
    GRADIENT_SPIKES: "single steps whose pre-clip gradient norm is at least 10x the running median of the 50 steps "
    "before them (count, steps, sizes); steady growth is GRADIENT_GROWTH",
    LOSS_SPIKES: "single steps whose training loss is at least 10x the running median of the 50 steps before them; "
    "a warning when the loss did not come back down afterwards",
    ZERO_GRADIENTS: "logged gradient norm exactly 0 on steps with a nonzero loss (frozen parameters, a detached "
    "graph or a logging bug), with the share of steps",
}

SEVERITIES = ("info", "warning", "critical")
DIRECTIONS = ("lower", "higher", "to")
ADVICE = ("do", "avoid")


# -- results ---------------------------------------------------------------------------
@dataclass
class Change:
    """A config change a suggestion proposes or advises against.

    ``field``: a TrainConfig field; ``direction``: ``"lower"`` or ``"higher"`` than the run's
    value, or ``"to"`` ``value``; ``value``: the example or target value (None: any);
    ``text``: the sentence of the finding's suggestion that states it; ``advise``: ``"do"``
    (proposed) or ``"avoid"`` (advised against)."""

    field: str
    direction: str
    value: Any = None
    text: str = ""
    advise: str = "do"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.advise not in ADVICE:
            raise ValueError(f"advise must be one of {ADVICE}, got {self.advise!r}")


@dataclass
class Finding:
    """One issue found in a log, with the numbers that show it."""

    code: str
    severity: str  # "info" | "warning" | "critical"
    title: str  # short name of the issue
    problem: str  # one sentence: what is wrong, with numbers
    evidence: dict  # numbers taken from the history (JSON-safe)
    explanation: str  # root cause, in plain language
    suggestion: str  # the change to make
    rationale: str = ""  # why that change helps
    monitor: str = ""  # what to watch in the next run
    evidence_text: list[str] = field(default_factory=list)  # the evidence, as sentences
    changes: list[Change] = field(default_factory=list)  # the config changes the suggestion names

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        self.evidence = to_python(self.evidence)

    def to_dict(self) -> dict:
        return to_json_safe(dataclasses.asdict(self))


@dataclass
class Diagnosis:
    """All findings on one log, plus what was not checked and what was assumed."""

    findings: list[Finding] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)  # the LR/scheduler/clip settings the checks used
    alternatives: list[dict] = field(default_factory=list)  # measured alternatives (``diagnose(tried=...)``)
    alternatives_note: str = ""  # what the alternatives were compared with

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def get(self, code: str) -> Finding | None:
        """The finding with this code, or None."""
        return next((f for f in self.findings if f.code == code), None)

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self):
        return iter(self.findings)

    def to_dict(self) -> dict:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "not_checked": list(self.not_checked),
            "assumptions": list(self.assumptions),
            "settings": to_json_safe(self.settings),
            "alternatives": to_json_safe(self.alternatives),
        }

    def to_markdown(self, title: str = "Training diagnosis", heading_level: int = 1) -> str:
        """The report. ``heading_level``: the level of its title (1: ``#``); its sections are one
        level below, its items two (at most 6), so a report can nest it under its own headings."""
        if isinstance(heading_level, bool) or not isinstance(heading_level, int) or not 1 <= heading_level <= 4:
            raise ValueError(f"heading_level must be an int from 1 to 4, got {heading_level!r}")
        h1, h2, h3 = ("#" * (heading_level + k) for k in range(3))
        lines = [f"{h1} {title}", "", f"{h2} Issues identified", ""]
        if not self.findings:
            lines += ["No issues found by the checks that could be run.", ""]
        for i, f in enumerate(self.findings, 1):
            lines += [f"{h3} {i}. {f.title}", f"`{f.code}` ({f.severity})", "", f"- **Problem**: {f.problem}"]
            if f.evidence_text:
                lines.append("- **Evidence**:")
                lines += [f"  - {e}" for e in f.evidence_text]
            lines += [f"- **Root cause**: {f.explanation}", ""]
        if self.findings:
            lines += [f"{h2} Suggested fixes", ""]
            for i, f in enumerate(self.findings, 1):
                lines += [f"{h3} {i}. {f.title}", f"**Change**: {f.suggestion}", ""]
                if f.rationale:
                    lines += [f"**Rationale**: {f.rationale}", ""]
            lines += [f"{h2} What to monitor next", ""]
            lines += [f"{i}. **{f.title}**: {f.monitor}" for i, f in enumerate(self.findings, 1) if f.monitor]
            lines.append("")
        lines += self._alternatives_markdown(h2)
        lines += [f"{h2} Not checked", ""]
        lines += [f"- {n}" for n in self.not_checked] or ["- Nothing: every check had the data it needs."]
        if self.assumptions:
            lines += ["", f"{h2} Assumptions", ""] + [f"- {a}" for a in self.assumptions]
        return "\n".join(lines).rstrip() + "\n"

    def _alternatives_markdown(self, h2: str) -> list[str]:
        """The section on the alternatives already measured (none: no section)."""
        if not self.alternatives and not self.alternatives_note:
            return []
        lines = [f"{h2} Alternatives already measured", ""]
        if self.alternatives_note:
            lines += [self.alternatives_note, ""]
        lines += [f"- {a['sentence']}" for a in self.alternatives]
        return lines + [""]

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return f"Diagnosis(codes={self.codes}, not_checked={len(self.not_checked)})"


__all__ = ["ADVICE", "CODES", "Change", "DIRECTIONS", "Diagnosis", "Finding", "SEVERITIES", *CODES]
