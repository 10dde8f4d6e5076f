"""Hand-made Histories for the diagnostics, expectations, plots and compare tests.

``make_history`` builds step and epoch rows the way the trainer does (same columns, the
per-epoch statistics of ``nbtrain.measures.epoch_stats``), with the LR column produced by
torch's rules via the simulator.
"""

from __future__ import annotations

import math

import pandas as pd

from nbtrain import History, TrainConfig
from nbtrain.diagnosis.plateau import simulate_plateau
from nbtrain.measures import epoch_stats, plateau_kwargs

SEED_VAL = [0.8294, 0.5869, 0.6093, 0.6127, 0.6011, 0.5884]
SEED_MAX_NORM = [2, 6, 7, 14, 16, 18]
SEED_CONFIG = TrainConfig(lr=2e-5, grad_clip=2.0, scheduler_patience=5)

HEALTHY_VAL = [1.0, 0.8, 0.7, 0.65, 0.62, 0.6201, 0.6202, 0.6203, 0.58, 0.55, 0.53, 0.51]
HEALTHY_CONFIG = TrainConfig(lr=1e-3, grad_clip=5.0, scheduler_patience=2, epochs=12, name="healthy")


def seed_frame() -> pd.DataFrame:
    """Only the write-up's numbers: epochs 0-5, val loss, LR, largest grad norm."""
    return pd.DataFrame(
        {"epoch": range(6), "val_loss": SEED_VAL, "lr": [2e-5] * 6, "grad_norm_max": SEED_MAX_NORM}
    )


def make_history(
    val: list[float],
    train: list[float] | None = None,
    norms: list[list[float]] | None = None,
    config: TrainConfig = HEALTHY_CONFIG,
    lr: list[float] | None = None,
) -> History:
    """Step rows from ``norms`` (one list of pre-clip norms per epoch), epoch rows like the trainer's."""
    n = len(val)
    train = train if train is not None else [1.2 / (1 + 0.3 * e) + 0.1 for e in range(n)]
    norms = norms if norms is not None else [[1.0 + 0.1 * math.sin(e * 20 + i) for i in range(20)] for e in range(n)]
    if lr is None:
        lr = simulate_plateau(val, config.lr, **plateau_kwargs(config))
    clip = config.grad_clip
    h = History(meta={"config": config.to_dict()})
    step = 0
    for e in range(n):
        lr_start = config.lr if e == 0 else lr[e - 1]
        rows = []
        for g in norms[e]:
            clipped = clip is not None and g > clip
            rows.append({"epoch": e, "step": step, "loss": train[e], "grad_norm": float(g), "clipped": clipped,
                         "clip_factor": min(1.0, clip / (g + 1e-6)) if clipped else 1.0, "lr": lr_start})
            step += 1
        for r in rows:
            h.add_step(r)
        h.add_epoch({"epoch": e, "val_loss": val[e], "lr": lr[e], "lr_start": lr_start, **epoch_stats(rows),
                     "epoch_time_s": 0.1})
    return h


def healthy_history() -> History:
    """Smoothly falling losses, flat small norms, one clipped step, an LR cut where torch makes it."""
    norms = [[1.0 + 0.1 * math.sin(e * 20 + i) for i in range(20)] for e in range(len(HEALTHY_VAL))]
    norms[3][5] = 5.5  # one clip in 240 steps
    return make_history(HEALTHY_VAL, norms=norms)


def growing_norms(n: int, start: float = 1.0, factor: float = 1.6, steps: int = 20) -> list[list[float]]:
    return [[start * factor**e * (0.8 + 0.4 * i / steps) for i in range(steps)] for e in range(n)]


# -- logs as other libraries write them (the shape of the issue-14 contract) ---------------------
def hf_history(
    n_steps: int = 1000,
    log_every: int = 10,
    eval_every: int = 200,
    warmup: int = 100,
    lr: float = 5e-5,
    val: list[float] | None = None,
    norm: float = 1.5,
) -> History:
    """A Hugging Face Trainer-like log: a step row every ``log_every`` steps (``step``, fractional
    ``epoch``, ``loss``, pre-clip ``grad_norm``, ``lr`` of a linear warmup then linear decay), and an
    evaluation row every ``eval_every`` steps (``step``, ``epoch``, ``val_loss``), no config."""
    steps, evals = [], []
    n_evals = n_steps // eval_every
    val = val if val is not None else [1.0 - 0.3 * i / max(n_evals - 1, 1) for i in range(n_evals)]
    for s in range(log_every, n_steps + 1, log_every):
        rate = lr * (s / warmup if s < warmup else (n_steps - s) / (n_steps - warmup))
        steps.append({"step": s, "epoch": round(s / 250, 4), "loss": 2.0 * math.exp(-s / 400) + 0.3 + 0.02 * math.sin(s),
                      "grad_norm": norm * (1 + 0.1 * math.sin(s / 7)), "lr": rate})
        if s % eval_every == 0 and s // eval_every <= len(val):
            evals.append({"step": s, "epoch": round(s / 250, 4), "val_loss": val[s // eval_every - 1]})
    return History(steps=steps, epochs=evals,
                   meta={"source": {"format": "huggingface", "path": "trainer_state.json"}, "evaluation_unit": "step"})


def torch_lrs(make_scheduler, n: int, val: list[float] | None = None, lr: float = 0.1) -> list[float]:
    """The LR a real torch scheduler gives: the LR in force at each of ``n`` steps (``val``: the
    values a ReduceLROnPlateau steps on; then the LR after each step is returned)."""
    import torch

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for i in range(n):
        if val is None:
            out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(val[i]) if val is not None else sched.step()
        if val is not None:
            out.append(opt.param_groups[0]["lr"])
    return out


def step_history(lrs: list[float], loss: list[float] | None = None, norms: list[float] | None = None,
                 evaluation_every: int | None = None, val: list[float] | None = None) -> History:
    """Step rows with the given LRs (steps 1..n), and optionally evaluations every N steps."""
    n = len(lrs)
    steps = [{"step": i + 1, "lr": v, "loss": (loss[i] if loss else 1.0), "grad_norm": (norms[i] if norms else 1.0)}
             for i, v in enumerate(lrs)]
    evals = []
    if evaluation_every:
        evals = [{"step": s, "val_loss": val[k] if val else 1.0}
                 for k, s in enumerate(range(evaluation_every, n + 1, evaluation_every))]
    return History(steps=steps, epochs=evals, meta={"evaluation_unit": "step"})
