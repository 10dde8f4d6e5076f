"""The researcher's configurations: round 1 (before), round 2 (after) and the fallbacks.

The fallbacks are the write-up's "If Issues Persist" list. Each one changes a single
thing on top of ROUND2, so it can be read as an ablation from the same seed.
"""

from __future__ import annotations

from .config import TrainConfig

ROUND1 = TrainConfig(lr=2e-5, grad_clip=2.0, scheduler_patience=5, name="round1")
ROUND2 = TrainConfig(lr=1e-5, grad_clip=3.0, scheduler_patience=3, name="round2")

LR_5E6 = ROUND2.replace(lr=5e-6, name="lr_5e-6")
BATCH_16 = ROUND2.replace(batch_size=16, name="batch_16")
BATCH_32 = ROUND2.replace(batch_size=32, name="batch_32")
ACCUM_2 = ROUND2.replace(grad_accum_steps=2, name="accum_2")
ACCUM_4 = ROUND2.replace(grad_accum_steps=4, name="accum_4")
COSINE_WARM_RESTARTS = ROUND2.replace(scheduler="cosine_warm_restarts", name="cosine_warm_restarts")
NO_NORMALIZATION = ROUND2.replace(normalize=False, name="no_normalization")

FALLBACKS: dict[str, TrainConfig] = {
    c.name: c for c in (LR_5E6, BATCH_16, BATCH_32, ACCUM_2, ACCUM_4, COSINE_WARM_RESTARTS, NO_NORMALIZATION)
}
ALL: dict[str, TrainConfig] = {"round1": ROUND1, "round2": ROUND2, **FALLBACKS}


def get(name: str) -> TrainConfig:
    """A preset by name (case-insensitive): ``round1``, ``round2`` or a fallback's name."""
    key = name.strip().lower()
    if key not in ALL:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(ALL)}")
    return ALL[key]
