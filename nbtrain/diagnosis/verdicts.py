"""Verdicts on expectations: one status per claim, with the numbers behind it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..files import to_json_safe, to_python

HELD = "held"
NOT_HELD = "not held"
NOT_ENOUGH_EPOCHS = "not enough epochs"
NOT_CHECKED = "not checked"
STATUSES = (HELD, NOT_HELD, NOT_ENOUGH_EPOCHS, NOT_CHECKED)


@dataclass
class Verdict:
    """One expectation and what the log says about it."""

    name: str  # stable identifier, e.g. "grad_norms_below_clip"
    claim: str  # the expectation, in the write-up's words
    status: str  # one of STATUSES
    evidence: dict = field(default_factory=dict)  # measured numbers and thresholds
    detail: str = ""  # one or two sentences: the rule and the outcome

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        self.evidence = to_python(self.evidence)

    @property
    def held(self) -> bool:
        return self.status == HELD

    def to_dict(self) -> dict:
        return {"name": self.name, "claim": self.claim, "status": self.status,
                "evidence": to_json_safe(self.evidence), "detail": self.detail}


class Expectations(list):
    """A list of Verdicts with table views."""

    def get(self, name: str) -> Verdict | None:
        return next((v for v in self if v.name == name), None)

    def counts(self) -> dict[str, int]:
        return {s: sum(v.status == s for v in self) for s in STATUSES}

    def to_dicts(self) -> list[dict]:
        return [v.to_dict() for v in self]

    def to_dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(self.to_dicts(), columns=["name", "claim", "status", "evidence", "detail"])

    def to_markdown(self) -> str:
        lines = ["| Expectation | Status | Detail |", "|---|---|---|"]
        for v in self:
            detail = v.detail.replace("|", "\\|")
            lines.append(f"| {v.claim} | **{v.status}** | {detail} |")
        c = self.counts()
        lines += ["", ", ".join(f"{n} {s}" for s, n in c.items() if n)]
        return "\n".join(lines) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


__all__ = ["Expectations", "HELD", "NOT_CHECKED", "NOT_ENOUGH_EPOCHS", "NOT_HELD", "STATUSES", "Verdict"]
