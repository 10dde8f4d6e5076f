"""Placeholder; rewritten after tuning."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch


@dataclass(frozen=True)
class LorenzTask:
    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0
    dt: float = 0.01
    burn_in: int = 1000
    stride: int = 1           # series sampling: keep every stride-th RK4 step
    window: int = 16
    horizon: int = 50         # in sampled steps
    noise: float = 0.3
    target_noise: float | None = None  # None -> same as noise (same series)
    n_train: int = 6000
    train_pool: int = 6000    # windows available in the training segment
    n_val: int = 2000


def lorenz_rk4(x0, n, dt, sigma, rho, beta):
    out = np.empty((n, 3), dtype=np.float64)
    x, y, z = x0
    h2 = dt / 2.0
    h6 = dt / 6.0
    for i in range(n):
        out[i, 0] = x; out[i, 1] = y; out[i, 2] = z
        a1 = sigma * (y - x); b1 = x * (rho - z) - y; c1 = x * y - beta * z
        xa = x + h2 * a1; ya = y + h2 * b1; za = z + h2 * c1
        a2 = sigma * (ya - xa); b2 = xa * (rho - za) - ya; c2 = xa * ya - beta * za
        xb = x + h2 * a2; yb = y + h2 * b2; zb = z + h2 * c2
        a3 = sigma * (yb - xb); b3 = xb * (rho - zb) - yb; c3 = xb * yb - beta * zb
        xc = x + dt * a3; yc = y + dt * b3; zc = z + dt * c3
        a4 = sigma * (yc - xc); b4 = xc * (rho - zc) - yc; c4 = xc * yc - beta * zc
        x = x + h6 * (a1 + 2 * a2 + 2 * a3 + a4)
        y = y + h6 * (b1 + 2 * b2 + 2 * b3 + b4)
        z = z + h6 * (c1 + 2 * c2 + 2 * c3 + c4)
    return out


def build(spec: LorenzTask, seed: int, normalize: bool = True):
    rng = np.random.default_rng(seed)
    x0 = (1.0, 1.0, 1.0) + rng.normal(size=3)
    W, H, s = spec.window, spec.horizon, spec.stride
    span = W + H  # samples per example
    gap = span
    n_samples = spec.train_pool + span + gap + spec.n_val + span
    raw = lorenz_rk4(x0, spec.burn_in + n_samples * s, spec.dt, spec.sigma, spec.rho, spec.beta)
    clean = raw[spec.burn_in :: s][:n_samples]
    std = clean.std(axis=0)
    obs = clean + rng.normal(size=clean.shape) * (spec.noise * std)
    tn = spec.noise if spec.target_noise is None else spec.target_noise
    if tn == spec.noise:
        tgt_series = obs
    else:
        tgt_series = clean + rng.normal(size=clean.shape) * (tn * std)

    def windows(starts):
        idx = starts[:, None] + np.arange(W)[None, :]
        x = obs[idx].reshape(len(starts), W * 3)
        y = tgt_series[starts + W - 1 + H]
        return x, y

    pool = np.arange(spec.train_pool)
    tr_starts = np.sort(rng.choice(pool, size=spec.n_train, replace=False)) if spec.n_train < spec.train_pool else pool
    va_starts = spec.train_pool + span + gap + np.arange(spec.n_val)
    xtr, ytr = windows(tr_starts)
    xva, yva = windows(va_starts)
    xtr, ytr, xva, yva = (torch.from_numpy(a.astype(np.float32)) for a in (xtr, ytr, xva, yva))
    if normalize:
        mx, sx = xtr.mean(0), xtr.std(0).clamp_min(1e-8)
        my, sy = ytr.mean(0), ytr.std(0).clamp_min(1e-8)
        xtr, xva = (xtr - mx) / sx, (xva - mx) / sx
        ytr, yva = (ytr - my) / sy, (yva - my) / sy
    return (torch.utils.data.TensorDataset(xtr, ytr), torch.utils.data.TensorDataset(xva, yva))
