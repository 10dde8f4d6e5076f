"""The rulebook: from the findings on a run to candidate changes, each with its source.

Every rule turns one or more findings (``nbtrain.diagnose``'s codes, and the probes') into
a one-setting change of the run's ``TrainConfig``. Nothing here is trusted on its own:
``nbtrain.next_round`` trains every candidate against the unchanged config from the same
seeds and keeps only what wins. The rules, in the order candidates are tried when the
budget cannot afford them all:

==  ================================  ========================================  =================================
#   finding(s)                        change                                    source
==  ================================  ========================================  =================================
1   GRADIENT_GROWTH, HEAVY_CLIPPING,  ``lr`` = the LR range test's suggestion   the probe: ``nbtrain.lr_range_test``
    OVERFITTING, VAL_FLUCTUATING,     (when at least 2x away from the LR)       on the run's model and data
    TRAIN_LOSS_PLATEAU, NON_FINITE,
    LR_ABOVE_STABLE_RANGE
2   HEAVY_CLIPPING (most steps        ``lr`` x 0.5: a lower LR, never a         Deep Learning Tuning Playbook:
    clipped, norms growing)           higher clip threshold                     clipping over about half of the
                                                                                updates is extremely aggressive
3   NON_FINITE (the loss diverged)    ``lr`` x 0.1                              Tuning Playbook: instability ->
                                                                                a lower LR (warmup: not available)
4   LR_NOT_ADAPTING,                  ``scheduler_patience`` = the largest      PyTorch's ReduceLROnPlateau
    RUN_TOO_SHORT_FOR_PATIENCE        patience that cuts this run's             semantics, replayed by
    (a plateau scheduler that         validation curve with an epoch left       ``nbtrain.plateau_state``
    did not cut)                      after the cut
5   LR_NOT_ADAPTING,                  ``scheduler`` = cosine warm restarts      PyTorch's
    RUN_TOO_SHORT_FOR_PATIENCE        with ``cosine_t0`` = the run's epochs     CosineAnnealingWarmRestarts (a
                                      (one cosine decay over the run)           schedule that needs no stall);
                                                                                the write-up's fallback 4
6   GRADIENT_SPIKES                   ``grad_clip`` = the 90th percentile of    Tuning Playbook: a threshold
                                      the run's pre-clip norms (never raised    near the 90th percentile of the
                                      when most steps are clipped)              observed norms
7   OVERFITTING, VAL_FLUCTUATING      ``weight_decay`` = 1e-4 (x 10 when set)   Tuning Playbook: regularization
    (validation stalls or rises)                                                when validation turns up
8   OVERFITTING, VAL_FLUCTUATING,     ``batch_size`` = B_simple's power of      McCandlish et al. 2018, measured
    BATCH_BELOW_NOISE_SCALE           two, at most 4x the batch (the            by ``nbtrain.gradient_noise_scale``
                                      estimate is good to a factor of 2-3)
==  ================================  ========================================  =================================

Not available as a change (``NOT_AVAILABLE``): LR warmup (the Playbook's first fix for
instability: ``TrainConfig`` has no warmup field) and keeping the best checkpoint (not a
config setting; the best validation loss, the round's measure, is what it would keep).
Findings with no config change (``NO_RULE``: a logging bug, a scheduler that disagrees with
its settings, loss spikes) are left to a person, and the report says so.
"""

from __future__ import annotations

import math
from typing import Callable

from .. import measures
from ..diagnosis.findings import (
    GRADIENT_GROWTH,
    GRADIENT_SPIKES,
    HEAVY_CLIPPING,
    LOSS_SPIKES,
    LR_NOT_ADAPTING,
    NON_FINITE,
    OVERFITTING,
    RUN_TOO_SHORT_FOR_PATIENCE,
    SCHEDULER_MISMATCH,
    TRAIN_LOSS_PLATEAU,
    VAL_FLUCTUATING,
    ZERO_GRADIENTS,
)
from ..diagnosis.formatting import sci, sig
from ..diagnosis.plateau import plateau_state
from ..diagnosis.run_data import as_run_data
from ..probes.findings import BATCH_BELOW_NOISE_SCALE, LR_ABOVE_STABLE_RANGE
from .candidates import Candidate, value_text
from .evidence import Evidence

PLAYBOOK = "Google's Deep Learning Tuning Playbook"
LR_RULE_FINDINGS = (GRADIENT_GROWTH, HEAVY_CLIPPING, LR_ABOVE_STABLE_RANGE, OVERFITTING, VAL_FLUCTUATING,
                    TRAIN_LOSS_PLATEAU, NON_FINITE)
STALL_FINDINGS = (OVERFITTING, VAL_FLUCTUATING)
SCHEDULE_FINDINGS = (LR_NOT_ADAPTING, RUN_TOO_SHORT_FOR_PATIENCE)
LR_FAR = 2.0  # the range test's LR is a candidate when it is at least this factor away from the LR
LOWER_LR = 0.5
DIVERGED_LR = 0.1
WEIGHT_DECAY_START = 1e-4
BATCH_CAP = 4  # the noise-scale batch is at most this many times the current batch
NOT_AVAILABLE = {
    "warmup": "LR warmup (the Tuning Playbook's first fix for instability): TrainConfig has no warmup field",
    "best checkpoint": "keeping the best checkpoint: not a TrainConfig setting; the round is judged on the best "
                       "validation loss, which is what keeping the best checkpoint gives",
}
NO_RULE = (ZERO_GRADIENTS, SCHEDULER_MISMATCH, LOSS_SPIKES)


def _two_sig(x: float) -> float:
    """``x`` rounded to two significant digits (a config value a person can read)."""
    return float(f"{x:.2g}")


def _present(ev: Evidence, codes) -> tuple[str, ...]:
    return tuple(c for c in codes if c in ev.codes)


def _range_test_lr(ev: Evidence) -> list[Candidate]:
    found, rt, lr = _present(ev, LR_RULE_FINDINGS), ev.range_test, ev.config.lr
    if not found or rt is None or not (math.isfinite(rt.suggestion) and rt.suggestion > 0):
        return []
    new = _two_sig(rt.suggestion)
    if max(new / lr, lr / new) < LR_FAR:
        return []
    return [Candidate(
        name=f"lr {sci(lr)} → {sci(new)} (LR range test)", changes={"lr": new}, knob="lr", findings=found,
        rationale=(f"The LR range test suggests {sci(rt.suggestion)} ({rt.suggestion_method}); the run used "
                   f"{sci(lr)}, {max(new / lr, lr / new):.3g}x {'lower' if new > lr else 'higher'} than that."),
        source=f"probe: nbtrain.lr_range_test over {len(rt.lrs)} steps on the run's model and data",
        evidence={"suggestion": rt.suggestion, "lr_at_min": rt.lr_at_min, "rise_lr": rt.rise_lr},
    )]


def _lower_lr(ev: Evidence) -> list[Candidate]:
    out, lr = [], ev.config.lr
    if HEAVY_CLIPPING in ev.codes:
        f = ev.get(HEAVY_CLIPPING)
        growth = " with growing pre-clip norms" if GRADIENT_GROWTH in ev.codes else ""
        out.append(Candidate(
            name=f"lr {sci(lr)} → {sci(lr * LOWER_LR)} (lower LR)", changes={"lr": _two_sig(lr * LOWER_LR)},
            knob="lr", findings=_present(ev, (HEAVY_CLIPPING, GRADIENT_GROWTH)),
            rationale=(f"{f.problem} Most steps clipped{growth}: the Playbook's fix is a lower LR, never a higher "
                       "clip threshold (with Adam a rescaled gradient barely changes the step)."),
            source=f"{PLAYBOOK}: clipping more than about half of the updates is extremely aggressive",
        ))
    f = ev.get(NON_FINITE)
    if f is not None and f.severity == "critical":
        out.append(Candidate(
            name=f"lr {sci(lr)} → {sci(lr * DIVERGED_LR)} (after divergence)",
            changes={"lr": _two_sig(lr * DIVERGED_LR)}, knob="lr", findings=(NON_FINITE,),
            rationale=f"{f.problem} A tenfold lower LR is the plainest way back to stable steps.",
            source=f"{PLAYBOOK}: instability calls for warmup (not available), clipping, then a lower LR",
        ))
    return out


def fitting_patience(val_losses, config) -> tuple[int, int] | None:
    """``(patience, cut_epoch)``: the largest patience below the config's at which torch's
    ReduceLROnPlateau, replayed on ``val_losses``, cuts with at least one epoch left; None if none does."""
    kwargs = {k: v for k, v in measures.plateau_kwargs(config).items() if k != "patience"}
    last = len(val_losses) - 2  # the cut must leave an epoch to train at the new LR
    for p in range(config.scheduler_patience - 1, -1, -1):
        cuts = plateau_state(val_losses, config.lr, p, **kwargs).cuts
        if cuts and cuts[0][0] <= last:
            return p, cuts[0][0]
    return None


def _schedule(ev: Evidence) -> list[Candidate]:
    found, c = _present(ev, SCHEDULE_FINDINGS), ev.config
    if not found or not measures.uses_plateau(c):
        return []
    out = []
    val = as_run_data(ev.history).col("val_loss")
    fit = None if val is None else fitting_patience([float(v) for v in val], c)
    if fit is not None:
        p, cut = fit
        out.append(Candidate(
            name=f"patience {c.scheduler_patience} → {p}", changes={"scheduler_patience": p}, knob="schedule",
            findings=found,
            rationale=(f"{ev.get(found[0]).problem} Replayed on this run's validation losses, ReduceLROnPlateau "
                       f"with patience {p} cuts the LR at the end of epoch {cut}, with epochs left to use it."),
            source="PyTorch ReduceLROnPlateau semantics (a cut on the (patience+1)-th epoch without beating the "
                   "best), replayed by nbtrain.plateau_state",
            evidence={"patience": p, "cut_epoch": cut},
        ))
    out.append(Candidate(
        name=f"cosine decay over {c.epochs} epochs",
        changes={"scheduler": "cosine_warm_restarts", "cosine_t0": c.epochs},
        knob="schedule", findings=found,
        rationale=(f"{ev.get(found[0]).problem} A cosine schedule lowers the LR on a fixed timetable, "
                   f"whether or not the validation loss stalls: one cycle of {c.epochs} epochs ends near zero."),
        source="PyTorch CosineAnnealingWarmRestarts (T_0 = the run's epochs: one decay, no restart); "
               "the write-up's fallback 4",
    ))
    return out


def _clip(ev: Evidence) -> list[Candidate]:
    f = ev.get(GRADIENT_SPIKES)
    if f is None:
        return []
    norms = [r.get("grad_norm") for r in ev.history.steps]
    p90 = measures.percentile(norms, 90)
    clip = ev.config.grad_clip
    if not math.isfinite(p90) or p90 <= 0:
        return []
    new = _two_sig(p90)
    if clip is not None and (abs(new - clip) <= 0.1 * clip or (HEAVY_CLIPPING in ev.codes and new > clip)):
        return []  # already near p90, or a higher threshold while most steps are clipped (never that)
    return [Candidate(
        name=f"grad_clip {value_text('grad_clip', clip)} → {sig(new, 2)} (p90 of the norms)",
        changes={"grad_clip": new}, knob="clip", findings=(GRADIENT_SPIKES,),
        rationale=f"{f.problem} A threshold at the 90th percentile of the run's pre-clip norms ({sig(p90, 3)}) "
                  "cuts the spikes and leaves the ordinary steps alone.",
        source=f"{PLAYBOOK}: a clip threshold near the 90th percentile of the observed norms",
        evidence={"p90": p90},
    )]


def _weight_decay(ev: Evidence) -> list[Candidate]:
    found, wd = _present(ev, STALL_FINDINGS), ev.config.weight_decay
    if not found:
        return []
    new = WEIGHT_DECAY_START if wd == 0 else _two_sig(wd * 10)
    return [Candidate(
        name=f"weight_decay {value_text('weight_decay', wd)} → {sci(new)}", changes={"weight_decay": new},
        knob="weight_decay", findings=found,
        rationale=f"{ev.get(found[0]).problem} An L2 penalty pulls the weights back from fitting the training "
                  "set's particulars.",
        source=f"{PLAYBOOK}: regularization when the validation loss turns up while the training loss falls",
    )]


def _batch(ev: Evidence) -> list[Candidate]:
    found, ns, c = _present(ev, (*STALL_FINDINGS, BATCH_BELOW_NOISE_SCALE)), ev.noise_scale, ev.config
    if not found or ns is None or not ns.b_simple > c.effective_batch_size:
        return []
    new = min(ns.recommended_batch_size, BATCH_CAP * c.batch_size)
    if new <= c.batch_size:
        return []
    return [Candidate(
        name=f"batch_size {c.batch_size} → {new} (noise scale)", changes={"batch_size": new}, knob="batch",
        findings=found,
        rationale=f"{ns.describe(c.effective_batch_size)} Capped at {BATCH_CAP}x the batch: the estimate is rough.",
        source="McCandlish et al. 2018 (B_simple), measured by nbtrain.gradient_noise_scale",
        evidence={"b_simple": ns.b_simple, "recommended": ns.recommended_batch_size},
    )]


RULES: tuple[Callable[[Evidence], list[Candidate]], ...] = (_range_test_lr, _lower_lr, _schedule, _clip,
                                                             _weight_decay, _batch)


def candidates(ev: Evidence) -> list[Candidate]:
    """The rulebook's candidates for a run, in the order of the table; one per distinct change."""
    out: list[Candidate] = []
    for rule in RULES:
        for cand in rule(ev):
            same = next((c for c in out if c.changes == cand.changes), None)
            if same is None:
                out.append(cand)
            else:  # two rules propose the same change: one candidate citing both
                same.findings = tuple(dict.fromkeys(same.findings + cand.findings))
    return out


def unaddressed(ev: Evidence, proposed: list[Candidate]) -> list[str]:
    """The findings no candidate addresses (a person has to look), as codes."""
    covered = {code for c in proposed for code in c.findings}
    return [f.code for f in ev.findings if f.code not in covered and f.severity != "info"]


__all__ = ["LR_RULE_FINDINGS", "NOT_AVAILABLE", "NO_RULE", "RULES", "candidates", "fitting_patience", "unaddressed"]
