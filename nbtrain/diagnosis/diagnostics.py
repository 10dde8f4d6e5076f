"""Automatic findings on a finished (or running) training log.

``diagnose(history, config)`` reads a History (or a DataFrame of epoch rows, or a dict
``{"epochs": df, "steps": df}``) and returns a :class:`Diagnosis`: a list of
:class:`Finding` s, each with a stable ``code``, numbers taken from the log, a plain
explanation and a suggested fix. What it could not check (missing columns, too few
epochs) is listed in ``Diagnosis.not_checked``; what it had to assume (no config given)
in ``Diagnosis.assumptions``. Nothing here touches a live trainer.

The report (``Diagnosis.to_markdown()``) follows the researcher's write-up: issues
(problem, evidence, root cause), suggested fixes (change, rationale), what to monitor.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .findings import (
    CODES,
    GRADIENT_GROWTH,
    HEAVY_CLIPPING,
    LR_NOT_ADAPTING,
    NON_FINITE,
    OVERFITTING,
    RUN_TOO_SHORT_FOR_PATIENCE,
    SCHEDULER_MISMATCH,
    TRAIN_LOSS_PLATEAU,
    VAL_FLUCTUATING,
    Diagnosis,
    Finding,
)
from .formatting import _and, _epoch_span, _join, _lr, _num
from .run_data import RunData, as_run_data
from .settings import Settings, resolve_settings
from .plateau import PlateauState, plateau_state, simulate_plateau



# thresholds (documented in the findings' evidence, so nothing is silently judged)
MIN_STALL_EPOCHS = 2  # LR_NOT_ADAPTING / VAL_FLUCTUATING: epochs past the best
GROWTH_RATIO = 2.0  # GRADIENT_GROWTH: last/first epoch ratio of a norm statistic
GROWTH_PER_EPOCH = 1.1  # GRADIENT_GROWTH: exp(slope of log norm vs epoch)
CRITICAL_GROWTH_RATIO = 5.0
HEAVY_CLIP_FRACTION = 0.5  # the Tuning Playbook's "about half of all updates"
PLATEAU_WINDOW = 3  # TRAIN_LOSS_PLATEAU: epochs
PLATEAU_MIN_IMPROVEMENT = 0.01  # relative
OVERFIT_WINDOW = 4  # OVERFITTING: last epochs compared

PLAYBOOK = "Google's Deep Learning Tuning Playbook"


# -- the checks --------------------------------------------------------------------------
class _Checks:
    def __init__(self, data: RunData, settings: Settings) -> None:
        self.data = data
        self.s = settings
        self.findings: list[Finding] = []
        self.not_checked: list[str] = []
        self.val = data.col("val_loss")
        self.train = data.col("train_loss")
        self.epochs = data.epoch_numbers
        self.state: PlateauState | None = None
        self.observed_lr = data.col("lr")

    def skip(self, message: str) -> None:
        if message not in self.not_checked:
            self.not_checked.append(message)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    # -- helpers -----------------------------------------------------------------------
    def epoch_range(self) -> str:
        return _epoch_span(self.epochs)

    def plateau_ok(self) -> bool:
        return self.s.scheduler == "plateau"

    def observed_cuts(self) -> list[int] | None:
        """Epochs whose scheduler step lowered the LR (from the lr column)."""
        lr = self.observed_lr
        if lr is None:
            return None
        start = self.data.col("lr_start")
        prev = start[0] if start is not None and math.isfinite(start[0]) else self.s.lr
        cuts = []
        for i, value in enumerate(lr):
            if prev is not None and math.isfinite(value) and value < prev * (1 - 1e-9):
                cuts.append(self.epochs[i])
            prev = value if math.isfinite(value) else prev
        return cuts

    def norm_series(self) -> dict[str, np.ndarray]:
        out = {}
        for name in ("grad_norm_p50", "grad_norm_p90", "grad_norm_max"):
            values = self.data.col(name)
            if values is not None:
                out[name] = values
        return out

    def clip_fractions(self) -> tuple[float | None, float | None, str]:
        """(overall, last epoch, source) share of steps clipped."""
        steps = self.data.steps
        per_epoch = self.data.col("clip_fraction")
        last = None
        if per_epoch is not None and np.isfinite(per_epoch[-1]):
            last = float(per_epoch[-1])
        if steps is not None and "clipped" in steps.columns:
            return float(steps["clipped"].astype(float).mean()), last, "step rows"
        if per_epoch is None:
            return None, None, ""
        ok = np.isfinite(per_epoch)
        n = self.data.col("n_steps")
        if n is not None and np.all(np.isfinite(n[ok])) and n[ok].sum() > 0:
            return float(np.sum(per_epoch[ok] * n[ok]) / n[ok].sum()), last, "clip_fraction weighted by n_steps"
        return float(np.mean(per_epoch[ok])), last, "mean of per-epoch clip_fraction"

    def healthy_clip(self) -> tuple[float | None, str]:
        """90th percentile of the first epoch's pre-clip norms (the Playbook's default threshold)."""
        steps = self.data.steps
        if steps is not None and {"grad_norm", "epoch"} <= set(steps.columns):
            first = pd.to_numeric(steps.loc[steps["epoch"] == self.epochs[0], "grad_norm"], errors="coerce")
            first = first[np.isfinite(first)]
            if len(first):
                return float(np.percentile(first, 90)), f"90th percentile of epoch {self.epochs[0]}'s step norms"
        p90 = self.data.col("grad_norm_p90")
        if p90 is not None and math.isfinite(p90[0]):
            return float(p90[0]), f"grad_norm_p90 of epoch {self.epochs[0]}"
        return None, ""

    # -- 1. non-finite values ------------------------------------------------------------
    def non_finite(self) -> None:
        bad: dict[str, dict] = {}
        for level, names in (
            ("epoch", ("train_loss", "val_loss", "lr", "grad_norm_p50", "grad_norm_p90", "grad_norm_max")),
            ("step", ("loss", "grad_norm", "lr")),
        ):
            for name in names:
                values = self.data.col(name, level)
                if values is None:
                    continue
                idx = np.flatnonzero(~np.isfinite(values))
                if len(idx):
                    key = "epoch" if level == "epoch" else "step"
                    where = self.data.epochs if level == "epoch" else self.data.steps
                    first_at = int(where[key].iloc[idx[0]]) if key in where.columns else int(idx[0])
                    bad[f"{level}.{name}"] = {"count": len(idx), f"first_{key}": first_at, "value": repr(values[idx[0]])}
        meta_bad = self.data.meta.get("non_finite_step")  # where nbtrain's trainer stopped a diverged run
        if meta_bad:
            bad["step.stopped_at"] = {"count": 1, "first_step": int(meta_bad["step"]), "value": repr(
                meta_bad["loss"] if not math.isfinite(meta_bad["loss"]) else meta_bad["grad_norm"])}
        if not bad:
            return
        described = [
            f"{name.split('.')[1]} ({name.split('.')[0]} rows): {v['count']} non-finite, first {v['value']} at "
            f"{'epoch' if 'first_epoch' in v else 'step'} {v.get('first_epoch', v.get('first_step'))}"
            for name, v in bad.items()
        ]
        self.add(
            Finding(
                code=NON_FINITE,
                severity="critical",
                title="Non-finite values",
                problem=f"The log holds NaN or infinite values in {len(bad)} column(s).",
                evidence=bad,
                evidence_text=described,
                explanation="A NaN or inf loss or gradient norm means the run diverged (or the data holds NaN/inf); "
                "every step after it is meaningless, and an infinite pre-clip norm turns the clipped gradient into NaN.",
                suggestion="Restart from the last finite checkpoint with a lower LR; check the inputs and targets for "
                "NaN/inf and extreme scales (normalization).",
                rationale="Divergence usually follows a step that was too large for the local curvature; a lower LR "
                "and normalized data shrink such steps.",
                monitor="Every loss and gradient norm finite; the largest pre-clip norm per epoch not rising.",
            )
        )

    # -- 2. the plateau scheduler -----------------------------------------------------------
    def scheduler(self) -> None:
        if not self.plateau_ok():
            what = self.s.scheduler or "unknown (not ReduceLROnPlateau)"
            self.skip(f"scheduler is {what}: LR-adaptation checks (ReduceLROnPlateau) not run")
            return
        if self.val is None:
            self.skip("no val_loss column: LR adaptation and validation checks not run")
            return
        lr = self.s.lr if self.s.lr is not None else 1.0
        if self.s.lr is None:
            self.skip("initial LR unknown: LR values not checked (cut epochs still are)")
        self.state = plateau_state(
            self.val, lr, self.s.patience, self.s.factor, self.s.threshold, "rel", self.s.cooldown, self.s.min_lr
        )
        if self.observed_lr is None:
            self.skip("no lr column: the LR actually used is unknown; torch's behaviour was simulated instead")
        self._not_adapting()
        self._too_short()
        self._mismatch(lr)

    def _too_short(self) -> None:
        n, p = self.data.n_epochs, self.s.patience
        if n >= p + 2:
            return
        st = self.state
        if st is None or st.num_bad_epochs < 1:
            return  # the validation loss is still improving: there was nothing to cut for
        self.add(
            Finding(
                code=RUN_TOO_SHORT_FOR_PATIENCE,
                severity="warning",
                title="Run too short for the scheduler's patience",
                problem=f"The run has {n} epochs ({self.epoch_range()}); with patience {p} ReduceLROnPlateau cannot "
                f"cut the LR before the end of epoch {p + 1}, so it could never have cut in this run.",
                evidence={"epochs_run": n, "patience": p, "epochs_needed": p + 2, "earliest_cut_epoch": p + 1},
                evidence_text=[
                    f"{n} epochs run; the first epoch always sets the best, and a cut needs {p + 1} non-improving "
                    f"epochs after it (the counter must exceed patience {p}), so at least {p + 2} epochs.",
                ],
                explanation="An unchanged LR here says nothing about whether the scheduler works: it never had the "
                "chance to act.",
                suggestion=f"Train at least {p + 2} epochs, or lower the patience (patience k cuts after k+1 epochs "
                "without improvement).",
                rationale="The scheduler can only help within the run's length.",
                monitor="Compare the epoch of each logged cut with `nbtrain.simulate_plateau` on the same losses.",
            )
        )

    def _mismatch(self, lr: float) -> None:
        if self.observed_lr is None or self.s.lr is None:
            return
        expected = simulate_plateau(
            self.val, lr, self.s.patience, self.s.factor, self.s.threshold, "rel", self.s.cooldown, self.s.min_lr
        )
        for i, (got, want) in enumerate(zip(self.observed_lr, expected)):
            if math.isfinite(got) and not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
                e = self.epochs[i]
                self.add(
                    Finding(
                        code=SCHEDULER_MISMATCH,
                        severity="warning" if self.s.source != "inferred" else "info",
                        title="Logged LR differs from ReduceLROnPlateau",
                        problem=f"After epoch {e} the log shows LR {_lr(got)}, but ReduceLROnPlateau with these settings "
                        f"gives {_lr(want)}.",
                        evidence={"epoch": e, "logged_lr": got, "expected_lr": want, "patience": self.s.patience,
                                  "factor": self.s.factor, "threshold": self.s.threshold},
                        evidence_text=[
                            f"logged LR per epoch: {_join(self.observed_lr, _lr)}",
                            f"simulated LR per epoch: {_join(expected, _lr)}",
                        ],
                        explanation="Either the settings used for this check are not the run's (config missing or "
                        "different), or something else changed the LR (another scheduler, manual changes, a resume "
                        "with a different config).",
                        suggestion="Pass the run's exact config to diagnose(), or find what else set the LR.",
                        rationale="The LR-adaptation findings are only as right as the settings they replay.",
                        monitor="The logged LR equals `nbtrain.simulate_plateau` on the logged validation losses.",
                    )
                )
                return

    def _not_adapting(self) -> None:
        st = self.state
        if st is None or st.best_epoch is None:
            return
        stall = st.epochs_since_best
        cuts = self.observed_cuts()
        if cuts is None:
            cuts = [e for e, _, _ in st.cuts]
        if stall < MIN_STALL_EPOCHS or any(c > self.epochs[st.best_epoch] for c in cuts):
            return
        i_best, val = st.best_epoch, self.val
        e_best = self.epochs[i_best]
        lr_now = self.observed_lr[-1] if self.observed_lr is not None else st.lr
        lr_span = (f"for all {self.data.n_epochs} epochs ({self.epoch_range()})" if not cuts
                   else f"since the cut at epoch {cuts[-1]}")
        after = list(range(i_best + 1, len(val)))
        prev_not_best = [self.epochs[i] for i in after if val[i] < val[i - 1]]
        thr = st.improvement_threshold
        p = self.s.patience
        next_cut = st.next_cut_epoch
        keras = st.keras_cut_epoch
        ev_text = [
            f"LR stayed at {_lr(lr_now)} {lr_span}.",
            f"Best validation loss {_num(st.best)} at epoch {e_best}; to count as an improvement an epoch must be "
            f"below {_num(st.best)} × (1 − {self.s.threshold:g}) = {_num(thr)}.",
            f"{stall} epochs in a row ({_epoch_span([self.epochs[i] for i in after])}) have not improved on it: "
            f"val loss {_join(val[i_best + 1:], _num)}; the bad-epoch counter is {st.num_bad_epochs}, and the LR is "
            f"cut only when it exceeds the patience ({p}).",
        ]
        if prev_not_best:
            names = _and([str(e) for e in prev_not_best])
            ev_text.append(
                f"Epoch{'s' if len(prev_not_best) > 1 else ''} {names} improved on the previous epoch but not on the "
                f"best ({_num(thr)}): in the scheduler's eyes {'they are' if len(prev_not_best) > 1 else 'it is'} "
                "bad epochs, not progress."
            )
        if next_cut is not None:
            ev_text.append(
                f"If nothing improves, the first cut comes at the end of epoch {next_cut} "
                f"(LR {_lr(lr_now)} → {_lr(max(lr_now * self.s.factor, self.s.min_lr))})."
            )
        else:
            ev_text.append(f"The LR is at its floor (min_lr {self.s.min_lr:g}): no further cut is possible.")
        if keras is not None and next_cut is not None and keras < next_cut:
            ev_text.append(
                f"Keras's ReduceLROnPlateau (cuts when its wait counter reaches patience) would cut at the end of "
                f"epoch {keras}, one epoch earlier."
            )
        # the largest patience that would have cut inside this run
        fits = [q for q in range(p - 1, -1, -1) if simulate_plateau(val, 1.0, q, self.s.factor, self.s.threshold,
                                                                     "rel", self.s.cooldown, self.s.min_lr)[-1] < 1.0]
        if fits:
            q = fits[0]
            lrs = simulate_plateau(val, 1.0, q, self.s.factor, self.s.threshold, "rel", self.s.cooldown, self.s.min_lr)
            cut_at = self.epochs[next(i for i, v in enumerate(lrs) if v < 1.0)]
            patience_hint = f"Patience {q} would have cut the LR at the end of epoch {cut_at} of this run."
        else:
            patience_hint = "No patience value would have cut the LR within this run."
        self.add(
            Finding(
                code=LR_NOT_ADAPTING,
                severity="warning",
                title="Learning rate not adapting",
                problem=f"LR stayed at {_lr(lr_now)} {lr_span} although the validation loss has not beaten its best "
                f"({_num(st.best)}, epoch {e_best}) for {stall} epochs.",
                evidence={
                    "lr": lr_now,
                    "patience": p,
                    "threshold": self.s.threshold,
                    "best": st.best,
                    "best_epoch": e_best,
                    "improvement_threshold": thr,
                    "num_bad_epochs": st.num_bad_epochs,
                    "epochs_since_best": stall,
                    "improved_on_previous_not_best": prev_not_best,
                    "next_cut_epoch": next_cut,
                    "keras_cut_epoch": keras,
                    "observed_cuts": cuts,
                },
                evidence_text=ev_text,
                explanation="ReduceLROnPlateau compares each epoch with the best value so far, not with the previous "
                f"epoch: an epoch counts as better only below best × (1 − threshold) = {_num(thr)}. The bad-epoch "
                "counter resets only on such an improvement, and the LR drops on the (patience+1)-th bad epoch in a "
                "row. The scheduler is working as specified: "
                + ("it has simply not reached its cut yet." if next_cut is not None else "the LR is already at its floor."),
                suggestion=f"Lower the patience or train longer. {patience_hint}",
                rationale="A shorter patience reacts sooner to a stalled validation loss; logging every cut "
                "(`Learning rate reduced: X -> Y (validation loss: Z)`) makes the scheduler's actions visible.",
                monitor=(f"An LR cut at the end of epoch {next_cut} unless an epoch's validation loss drops below "
                         f"{_num(thr)} first." if next_cut is not None else "The validation loss at the LR floor."),
            )
        )

    # -- 3. gradients --------------------------------------------------------------------
    def gradients(self) -> None:
        series = self.norm_series()
        if not series:
            self.skip("no grad_norm columns (grad_norm_p50/p90/max or step grad_norm): gradient growth not checked")
            return
        if self.data.n_epochs < 3:
            self.skip(f"only {self.data.n_epochs} epoch(s): gradient growth needs at least 3")
            return
        stats = {}
        for name, values in series.items():
            ok = np.isfinite(values) & (values > 0)
            if ok.sum() < 3:
                continue
            x = np.asarray(self.epochs, dtype=float)[ok]
            y = values[ok]
            slope = float(np.polyfit(x, np.log(y), 1)[0])
            stats[name] = {
                "first": float(y[0]),
                "last": float(y[-1]),
                "ratio": float(y[-1] / y[0]),
                "growth_per_epoch": math.exp(slope),
                "per_epoch": [float(v) for v in values],
            }
        growing = {k: v for k, v in stats.items() if v["ratio"] >= GROWTH_RATIO and v["growth_per_epoch"] >= GROWTH_PER_EPOCH}
        overall, last, clip_src = self.clip_fractions()
        clip = self.s.grad_clip
        if not growing:
            return
        worst = max(growing.values(), key=lambda v: v["ratio"])
        names = {"grad_norm_p50": "Median", "grad_norm_p90": "90th-percentile", "grad_norm_max": "Largest"}
        ev_text = [
            f"{names[k]} pre-clip norm per epoch: {_join(v['per_epoch'], _num)} "
            f"({v['ratio']:.1f}× from epoch {self.epochs[0]} to {self.epochs[-1]}, about ×{v['growth_per_epoch']:.2f} "
            f"per epoch on a log-linear fit)"
            for k, v in stats.items()
        ]
        evidence: dict[str, Any] = {"thresholds": {"ratio": GROWTH_RATIO, "growth_per_epoch": GROWTH_PER_EPOCH}}
        evidence.update(stats)
        evidence["grad_clip"] = clip
        largest = max(max(v for v in s["per_epoch"] if math.isfinite(v)) for s in stats.values())
        if clip is not None:
            scale = clip / largest if largest > 0 else 1.0
            evidence["clip_scale_at_largest"] = min(1.0, scale)
            ev_text.append(
                f"These are norms BEFORE clipping at {_num(clip)}: the largest, {_num(largest)}, was scaled by "
                f"{min(1.0, scale):.2f} (to {min(1.0, scale):.0%} of its length). Values above the threshold show how hard "
                "clipping bites, not that it failed."
            )
        if overall is not None:
            evidence["clip_fraction"] = overall
            evidence["clip_fraction_last_epoch"] = last
            ev_text.append(f"{overall:.0%} of all steps were clipped ({clip_src})"
                           + (f"; {last:.0%} in the last epoch." if last is not None else "."))
        healthy, healthy_src = self.healthy_clip()
        evidence["suggested_clip"] = healthy
        heavy = overall is not None and (overall > HEAVY_CLIP_FRACTION or (last or 0) > HEAVY_CLIP_FRACTION)
        lr_hint = f" (e.g. {_lr(self.s.lr)} → {_lr(self.s.lr / 2)})" if self.s.lr else ""
        suggestion = f"Lower the learning rate{lr_hint}."
        if healthy is not None:
            suggestion += (f" Set the clip threshold near {_num(healthy)}, the {healthy_src} (a healthy epoch), "
                           "instead of raising it to make room for the grown norms.")
        if heavy:
            suggestion += (" More than half of the steps are clipped: clipping is doing the optimizer's job, and "
                           f"{PLAYBOOK} recommends a lower LR over any threshold change then.")
        self.add(
            Finding(
                code=GRADIENT_GROWTH,
                severity="critical" if worst["ratio"] >= CRITICAL_GROWTH_RATIO else "warning",
                title="Gradient norms growing",
                problem=f"Pre-clip gradient norms grew {worst['ratio']:.1f}× over {self.data.n_epochs} epochs.",
                evidence=evidence,
                evidence_text=ev_text,
                explanation="`clip_grad_norm_` returns (and nbtrain logs) the norm before clipping, so growth means the "
                "raw gradients themselves got larger: the model moved into sharper regions of the loss landscape "
                "than the LR can handle (with Adam the preconditioned sharpness tends to settle near 38/lr), or "
                "the target's dynamics make gradients grow as they are learned (chaotic systems do), or the inputs or "
                "targets are poorly scaled. Clipping hides this from the update size but not from the log.",
                suggestion=suggestion,
                rationale=f"{PLAYBOOK}: log the unclipped norm and set the threshold near the 90th percentile of "
                "observed norms; a smaller LR takes smaller steps into sharp regions. With Adam, a constant rescaling "
                "of the gradient is largely divided out by its running RMS, so a different threshold alone changes "
                "little: measure it.",
                monitor="Per-epoch p50/p90/max of the pre-clip norm staying flat, and the clip fraction staying low.",
            )
        )

    def clipping(self) -> None:
        clip = self.s.grad_clip
        overall, last, src = self.clip_fractions()
        p50 = self.data.col("grad_norm_p50")
        over_half_epochs: list[int] = []
        if clip is not None and p50 is not None:
            over_half_epochs = [self.epochs[i] for i, v in enumerate(p50) if math.isfinite(v) and v > clip]
        if overall is None and not over_half_epochs:
            if clip is None and not self.s.clip_known:
                self.skip("clip threshold unknown and no clip_fraction column or step 'clipped' flags: clipping not checked")
            elif clip is None:
                self.skip("clipping is off (grad_clip None): clipping frequency not checked")
            else:
                self.skip("no clip_fraction column, step 'clipped' flags or grad_norm_p50: clipping frequency not checked")
            return
        if overall is not None:
            heavy = overall > HEAVY_CLIP_FRACTION or (last is not None and last > HEAVY_CLIP_FRACTION)
        else:  # medians only: over half clipped in the last epoch, or in most epochs
            heavy = self.epochs[-1] in over_half_epochs or len(over_half_epochs) > self.data.n_epochs / 2
        if not heavy:
            return
        ev_text = []
        evidence: dict[str, Any] = {"threshold_fraction": HEAVY_CLIP_FRACTION, "grad_clip": clip}
        if overall is not None:
            evidence.update({"clip_fraction": overall, "clip_fraction_last_epoch": last})
            ev_text.append(f"{overall:.0%} of all steps clipped ({src})"
                           + (f"; {last:.0%} in the last epoch" if last is not None else "") + ".")
            per_epoch = self.data.col("clip_fraction")
            if per_epoch is not None:
                ev_text.append(f"Clipped share per epoch: {_join(per_epoch, lambda v: f'{v:.0%}')}.")
        if over_half_epochs:
            evidence["epochs_median_above_clip"] = over_half_epochs
            ev_text.append(f"The median pre-clip norm exceeded the threshold {_num(clip)} in epoch(s) "
                           f"{_and([str(e) for e in over_half_epochs])}: more than half of those epochs' steps were clipped.")
        healthy, healthy_src = self.healthy_clip()
        evidence["suggested_clip"] = healthy
        where = f"the threshold {_num(clip)}" if clip is not None else "the threshold"
        self.add(
            Finding(
                code=HEAVY_CLIPPING,
                severity="warning",
                title="Clipping most updates",
                problem=f"More than half of the optimizer steps were clipped at {where}.",
                evidence=evidence,
                evidence_text=ev_text,
                explanation=f"{PLAYBOOK} calls clipping more than about half of all updates extremely aggressive: "
                "clipping then sets the step size, doing the optimizer's job. With Adam, which divides by a running "
                "RMS of the gradient, rescaling nearly every gradient by a similar factor changes the steps little, so "
                "raising the threshold (say 2.0 → 3.0) may change little too.",
                suggestion="Lower the learning rate rather than raise the threshold"
                + (f"; then set the threshold near {_num(healthy)} (the {healthy_src})." if healthy is not None else "."),
                rationale="A smaller LR addresses why the gradients are large; the threshold near the 90th percentile "
                "of healthy norms keeps clipping for the rare spikes it is meant for.",
                monitor="Clip fraction per epoch well under 50% (near 10% with a p90 threshold).",
            )
        )

    # -- 4. validation and training loss -----------------------------------------------------
    def validation(self) -> None:
        if self.val is None:
            self.skip("no val_loss column: validation fluctuation and overfitting not checked")
            return
        ok = np.isfinite(self.val)
        if ok.sum() < 4:
            self.skip(f"only {int(ok.sum())} finite validation losses: fluctuation and overfitting need at least 4 epochs")
            return
        val = np.where(ok, self.val, np.nan)
        i_best = int(np.nanargmin(val))
        since = len(val) - 1 - i_best
        overfit = self._overfitting()
        if since < MIN_STALL_EPOCHS or overfit:
            return
        window = val[i_best:]
        diffs = np.diff(window[np.isfinite(window)])
        rises = [self.epochs[i_best + 1 + i] for i, d in enumerate(diffs) if d > 0]
        falls = [self.epochs[i_best + 1 + i] for i, d in enumerate(diffs) if d < 0]
        total_gain = float(val[0] - val[i_best]) if math.isfinite(val[0]) else float("nan")
        swing = float(np.nanmax(window) - np.nanmin(window))
        x = np.arange(len(window), dtype=float)[np.isfinite(window)]
        slope, intercept = np.polyfit(x, window[np.isfinite(window)], 1)
        resid = window[np.isfinite(window)] - (slope * x + intercept)
        noise = float(np.std(resid))
        last_gap = float(val[-1] / val[i_best] - 1) if val[i_best] != 0 else float("nan")
        train_note = self._train_trend_note()
        ev_text = [
            f"Validation loss by epoch: {_join(self.val, _num)}.",
            f"Best {_num(val[i_best])} at epoch {self.epochs[i_best]}; {since} epochs since then without a new best.",
            f"After the best it rose in epoch(s) {_and([str(e) for e in rises]) or 'none'} and fell in epoch(s) "
            f"{_and([str(e) for e in falls]) or 'none'}; swing {_num(swing)}"
            + (f" = {swing / total_gain:.0%} of the total improvement {_num(total_gain)}" if total_gain > 0 else "")
            + ".",
            f"Trend since the best {slope:+.3g} per epoch, scatter around it (std of residuals) {_num(noise)}; "
            f"last epoch {last_gap:+.2%} from the best.",
        ]
        if train_note:
            ev_text.append(train_note)
        self.add(
            Finding(
                code=VAL_FLUCTUATING,
                severity="warning",
                title="Validation loss fluctuating",
                problem=f"The validation loss has not improved on its best ({_num(val[i_best])}, epoch "
                f"{self.epochs[i_best]}) for {since} epochs and moves up and down instead of trending.",
                evidence={
                    "best": float(val[i_best]),
                    "best_epoch": self.epochs[i_best],
                    "epochs_since_best": since,
                    "rises_after_best": rises,
                    "falls_after_best": falls,
                    "swing": swing,
                    "total_improvement": total_gain,
                    "trend_per_epoch": float(slope),
                    "residual_std": noise,
                    "last_vs_best": last_gap,
                    "min_stall_epochs": MIN_STALL_EPOCHS,
                },
                evidence_text=ev_text,
                explanation=(
                    "Ups and downs around a flat trend are noise, not overfitting (which shows as a steady rise "
                    "in validation loss while the training loss keeps falling). Noise this size usually comes from "
                    "steps too large for the current curvature (a high LR, with clipping setting the step size), "
                    "from small batches, or from a small validation set."
                    if falls and rises
                    else "The validation loss has moved only one way since its best "
                    f"({'up' if rises else 'nowhere'}), so this is a stall or a drift rather than noise; "
                    + ("with the training loss also not falling it points to the optimizer, not overfitting."
                       if self.train is not None else "without a training loss it cannot be told from overfitting.")
                ),
                suggestion="Lower the LR or let the scheduler cut it sooner (shorter patience); if that is not enough, a "
                "larger batch or gradient accumulation lowers the gradient noise. Keep the best checkpoint, not the last.",
                rationale="Smaller or less noisy steps let the model settle into the basin it has found instead of "
                "bouncing across it.",
                monitor="New best validation losses in most epochs, and a shrinking epoch-to-epoch swing.",
            )
        )

    def _train_trend_note(self) -> str:
        if self.train is None:
            return ""
        t = self.train[np.isfinite(self.train)]
        if len(t) < 2:
            return ""
        falling = t[-1] < t[0]
        return (f"Training loss {_num(t[0])} → {_num(t[-1])}: "
                + ("still falling." if falling else "not falling."))

    def _overfitting(self) -> bool:
        if self.train is None:
            self.skip("no train_loss column: overfitting and training-loss plateau not checked")
            return False
        n = self.data.n_epochs
        k = min(OVERFIT_WINDOW, n)
        if k < 3:
            return False
        t, v = self.train[-k:], self.val[-k:]
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            return False
        x = np.arange(k, dtype=float)
        t_slope = float(np.polyfit(x, t, 1)[0])
        v_slope = float(np.polyfit(x, v, 1)[0])
        best = float(np.nanmin(self.val))
        if not (t_slope < 0 < v_slope and v[-1] > v[0] and v[-1] > best):
            return False
        e0, e1 = self.epochs[-k], self.epochs[-1]
        gap0, gap1 = float(v[0] - t[0]), float(v[-1] - t[-1])
        self.add(
            Finding(
                code=OVERFITTING,
                severity="warning",
                title="Overfitting",
                problem=f"Over epochs {e0}-{e1} the training loss fell ({_num(t[0])} → {_num(t[-1])}) while the "
                f"validation loss rose ({_num(v[0])} → {_num(v[-1])}).",
                evidence={"window_epochs": [e0, e1], "train_slope": t_slope, "val_slope": v_slope,
                          "gap_start": gap0, "gap_end": gap1, "best_val": best},
                evidence_text=[
                    f"Train loss trend {t_slope:+.3g}/epoch, validation trend {v_slope:+.3g}/epoch over the last {k} epochs.",
                    f"Validation minus training loss grew from {_num(gap0)} to {_num(gap1)}.",
                ],
                explanation="A steady opposite trend (not up-and-down noise) means the model is fitting the training "
                "set at the expense of what generalizes: too little data for the model size, or too many epochs.",
                suggestion="Keep the best checkpoint (early stopping); add data or regularization (weight decay, "
                "dropout) or use a smaller model.",
                rationale="Noise fixes (lower LR, larger batch) do not cure overfitting; capacity and data do.",
                monitor="The gap between validation and training loss staying flat.",
            )
        )
        return True

    def train_plateau(self) -> None:
        if self.train is None:
            self.skip("no train_loss column: overfitting and training-loss plateau not checked")
            return
        t = self.train
        if len(t) < PLATEAU_WINDOW + 1 or not np.all(np.isfinite(t)):
            self.skip(f"fewer than {PLATEAU_WINDOW + 1} finite training losses: training-loss plateau not checked")
            return
        before = float(np.min(t[:-PLATEAU_WINDOW]))
        recent = float(np.min(t[-PLATEAU_WINDOW:]))
        gain = (before - recent) / abs(before) if before != 0 else 0.0
        if gain >= PLATEAU_MIN_IMPROVEMENT:
            return
        e0 = self.epochs[-PLATEAU_WINDOW]
        lr_note = ""
        cuts = self.observed_cuts()
        if cuts is not None:
            lr_note = (f" The LR was last cut at epoch {cuts[-1]}." if cuts else " The LR was never cut.")
        self.add(
            Finding(
                code=TRAIN_LOSS_PLATEAU,
                severity="warning",
                title="Training loss plateau",
                problem=f"The training loss improved by {gain:.2%} in the last {PLATEAU_WINDOW} epochs "
                f"({e0}-{self.epochs[-1]}), under the {PLATEAU_MIN_IMPROVEMENT:.0%} that counts as progress.",
                evidence={"best_before_window": before, "best_in_window": recent, "relative_improvement": gain,
                          "window": PLATEAU_WINDOW, "min_improvement": PLATEAU_MIN_IMPROVEMENT},
                evidence_text=[f"Training loss by epoch: {_join(t, _num)}.{lr_note}"],
                explanation="When even the training loss stops falling, the optimizer is stuck: steps too large to "
                "descend further (bouncing across a valley, often with heavy clipping), too small to make progress, "
                "or the model has reached its capacity on this data.",
                suggestion="If gradients are large or heavily clipped, lower the LR; if the LR has already been cut "
                "to a tiny value, raise it or restart with warm restarts; otherwise consider a larger model or "
                "better-scaled inputs and targets.",
                rationale="Which fix applies depends on the step size relative to the landscape; the gradient and "
                "clipping findings tell which side the run is on.",
                monitor="The training loss falling by more than 1% per few epochs.",
            )
        )


def diagnose(history: Any, config: Any = None) -> Diagnosis:
    """Diagnose a training log.

    ``history``: a History, a DataFrame of epoch rows, or ``{"epochs": df, "steps": df}``.
    ``config``: a TrainConfig or a dict of its fields; None uses the history's stored
    config, or infers what it can (and says so in ``Diagnosis.assumptions``).
    """
    data = as_run_data(history)
    settings, assumptions = resolve_settings(config, data)
    checks = _Checks(data, settings)
    if data.n_epochs == 0:
        checks.skip("no epoch rows: nothing to diagnose")
    else:
        checks.non_finite()
        checks.scheduler()
        checks.gradients()
        checks.clipping()
        checks.validation()
        checks.train_plateau()
    return Diagnosis(
        findings=checks.findings,
        not_checked=data.notes + checks.not_checked,
        assumptions=assumptions,
        settings=settings.to_dict(),
    )


__all__ = [
    "CODES",
    "Diagnosis",
    "Finding",
    "RunData",
    "Settings",
    "as_run_data",
    "diagnose",
    "resolve_settings",
    *CODES,
]
