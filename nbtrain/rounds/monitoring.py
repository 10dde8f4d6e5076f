"""Monitoring points: thresholds a person can watch in the next run, from the final verification runs.

Each point names a quantity the training log shows every epoch (``nbtrain.measures``' epoch
statistics, as the trainer's log line prints them) and the range the round's config showed
over its final verification runs (every seed, every epoch). A run of the same config that
leaves that range behaves differently from what was verified.
"""

from __future__ import annotations

from ..diagnosis.formatting import sci, sig
from ..diagnosis.run_data import RunData
from ..diagnosis.summary import summarize
from ..training.config import TrainConfig


def _column_max(runs: list[RunData], name: str) -> float | None:
    values = [float(v) for d in runs for v in (d.col(name) if d.col(name) is not None else [])]
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    return max(finite) if finite else None


def _lr_point(runs: dict, config: TrainConfig) -> str:
    if config.scheduler == "cosine_warm_restarts":
        return (f"**Learning rate**: follows the cosine from {sci(config.lr)} towards {sci(config.min_lr)} over "
                f"{config.cosine_t0} epochs; no `Learning rate reduced` lines are expected.")
    if config.scheduler != "plateau":
        return f"**Learning rate**: constant at {sci(config.lr)}."
    cuts = {s: [e for e, _, _ in (d.lr_cuts(config.lr) or [])] for s, d in runs.items()}
    if any(cuts.values()):
        seen = "the verification runs cut at the end of epoch " + "; ".join(
            f"{', '.join(map(str, c)) or 'none'} (seed {s})" for s, c in cuts.items())
    else:
        seen = "the verification runs made no cut"
    return (f"**LR cuts** (`Learning rate reduced: ...` lines): ReduceLROnPlateau with patience "
            f"{config.scheduler_patience} cuts after {config.scheduler_patience + 1} epochs in a row without a "
            f"new best; {seen}.")


def monitoring_points(by_seed: dict, config: TrainConfig) -> list[str]:
    """The points for ``config`` from its final verification runs, ``seed -> RunData`` (see the module docstring)."""
    if not by_seed:
        return []
    runs = list(by_seed.values())
    sums = [summarize(d, config) for d in runs]
    best = [s["best_val_loss"] for s in sums if s["best_val_loss"] is not None]
    best_epochs = [s["best_epoch"] for s in sums if s["best_epoch"] is not None]
    n = len(runs)
    points = []
    if best:
        points.append(f"**Validation loss**: best at most {sig(max(best), 3)} (the verification runs reached "
                      f"{sig(min(best), 3)}-{sig(max(best), 3)}, at epochs {', '.join(map(str, best_epochs))}).")
    p50, p90 = _column_max(runs, "grad_norm_p50"), _column_max(runs, "grad_norm_p90")
    if p50 is not None:
        clip = f" (clip threshold {sig(config.grad_clip, 3)})" if config.grad_clip is not None else ""
        points.append(f"**Pre-clip gradient norms**: the per-epoch median at most {sig(p50, 3)} and the 90th "
                      f"percentile at most {sig(p90, 3)}{clip}, the largest in any epoch of the {n} runs.")
    clipped = _column_max(runs, "clip_fraction")
    if clipped is not None and config.grad_clip is not None:
        points.append(f"**Clip fraction** per epoch: at most {clipped:.0%} (the largest in the {n} runs); above 50% "
                      "clipping is doing the optimizer's job.")
    points.append(_lr_point(by_seed, config))
    train = [d.col("train_loss") for d in runs if d.col("train_loss") is not None]
    if train:
        points.append(f"**Training loss**: falls from at most {sig(max(float(t[0]) for t in train), 3)} in epoch 0 "
                      f"to at most {sig(max(float(t[-1]) for t in train), 3)} in the last epoch.")
    return points


__all__ = ["monitoring_points"]
