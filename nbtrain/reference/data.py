"""The reference data set: forecasting the Lorenz-63 system a short way ahead.

The task
--------
A single trajectory of the Lorenz-63 system (sigma 10, rho 28, beta 8/3) is integrated
with classical fourth-order Runge-Kutta, started from a seed-dependent point and run
through a burn-in so it sits on the attractor. Each example is a window of
``window`` consecutive states (x, y, z), flattened time-major to ``3 * window``
numbers, and its target is the state ``horizon`` integration steps after the window's
last state. With the reference constants (``dt`` 0.01, 16 states, ``horizon`` 50) the
model must predict the state 0.5 time units ahead, about half a Lyapunov time of the
system (its largest Lyapunov exponent is about 0.9).

The split is by time, 80/20: the first ``n_train`` (4,000) windows are the training set;
after a gap long enough that no validation window or target overlaps a training one, the
next ``n_val`` (1,000) windows are the validation set. Both sets are small (40 and 10 time
units of one trajectory, roughly 40 and 10 circuits of the attractor), and consecutive
windows are near copies of each other. Normalizers (per-feature z-scores) are fitted on
the training split only and applied to both splits, as a careful pipeline would.

Why the gradients grow
----------------------
The map from "the last 16 states" to "the state 0.5 time units later" is the flow map
of a chaotic system: smooth almost everywhere but very steep near the boundary between
the attractor's two lobes, where nearby states end up on different lobes. At the start
the network fits the smooth, easy part (roughly: continue the current motion), and its
gradients are small. As it learns to follow the trajectory, it has to represent more of
that steepness: its weights grow and align, its input-output slope rises, and the
per-batch gradients grow with it. (That account is the expected mechanism; what is
measured is the norms themselves, and that a deeper net of the same size shows more
growth, see ``nbtrain.models``.) Nothing is injected; this is how a network fitting a
chaotic system is expected to behave (compare Mikhaeil, Monfared and Durstewitz,
NeurIPS 2022, on RNNs trained on chaotic dynamics).

What the validation loss does (measured, not promised)
------------------------------------------------------
With the round-1 settings (Adam lr 2e-5, batch 8, 7 epochs) the validation loss falls
fast over epochs 0-2, reaches its best (0.41-0.46) at epoch 2-4 and then rises and jumps
about (0.47-0.64 at epoch 6 on training seeds 0-4) while the training loss
keeps falling: the model fits the particulars of its 40 time units, and its errors on a
validation stretch of only 10 time units swing with every change of the weights. The
validation set's size matters: scored on 4,000 validation windows (40 time units) the same
runs give a flatter curve whose best comes at epoch 4-5. And the data set matters: on
other trajectories (``data_seed``) the loss still jumps about after epoch 2, but the best
epoch is not always early. ``benchmarks/bench_reference.py`` prints the per-seed table
(``--n-val 4000`` for the longer validation split, ``--data-seed 1`` for another data set).
A longer split is ``LorenzTask(n_val=4000)``: the trajectory is extended, so the training
windows and normalizers stay bit-identical and the first 1,000 validation windows are the same.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

__all__ = [
    "LorenzTask",
    "REFERENCE_TASK",
    "Normalizer",
    "ReferenceData",
    "lorenz_trajectory",
    "make_reference_data",
]

COORDS = ("x", "y", "z")


@dataclass(frozen=True)
class LorenzTask:
    """Constants of the reference forecasting task (``REFERENCE_TASK`` holds the defaults)."""

    sigma: float = 10.0        # Lorenz-63 sigma (the classic chaotic setting)
    rho: float = 28.0          # Lorenz-63 rho
    beta: float = 8.0 / 3.0    # Lorenz-63 beta
    dt: float = 0.01           # RK4 step and sampling interval, in time units
    burn_in: int = 1000        # RK4 steps dropped so the trajectory sits on the attractor
    window: int = 16           # past states per input -> 3 * 16 = 48 input features
    horizon: int = 50          # steps from the window's last state to the target (0.5 time units)
    noise: float = 0.0         # Gaussian observation noise, as a fraction of each coordinate's std
    n_train: int = 4000        # training windows (consecutive, 40 time units)
    n_val: int = 1000          # validation windows (consecutive, after a gap; 10 time units)

    def __post_init__(self) -> None:
        for name in ("sigma", "rho", "beta", "dt"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float)) \
                or not self.noise >= 0:
            raise ValueError(f"noise must be a number >= 0, got {self.noise!r}")
        for name in ("burn_in", "window", "horizon", "n_train", "n_val"):
            value = getattr(self, name)
            low = 0 if name == "burn_in" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")

    @property
    def in_features(self) -> int:
        return 3 * self.window

    def fingerprint(self) -> str:
        """The task's constants as one string (run caches compare it to spot other data)."""
        return "lorenz63:" + ",".join(f"{k}={v!r}" for k, v in sorted(asdict(self).items()))


REFERENCE_TASK = LorenzTask()


def lorenz_trajectory(x0, n_steps: int, dt: float, sigma: float = 10.0, rho: float = 28.0,
                      beta: float = 8.0 / 3.0) -> np.ndarray:
    """Integrate Lorenz-63 with classical RK4; returns ``(n_steps, 3)`` float64, row 0 = ``x0``.

    Plain Python floats: for one 3-dimensional trajectory this is faster than numpy and
    bit-for-bit reproducible.
    """
    out = np.empty((n_steps, 3), dtype=np.float64)
    x, y, z = (float(v) for v in x0)
    h2, h6 = dt / 2.0, dt / 6.0
    for i in range(n_steps):
        out[i, 0], out[i, 1], out[i, 2] = x, y, z
        a1, b1, c1 = sigma * (y - x), x * (rho - z) - y, x * y - beta * z
        xa, ya, za = x + h2 * a1, y + h2 * b1, z + h2 * c1
        a2, b2, c2 = sigma * (ya - xa), xa * (rho - za) - ya, xa * ya - beta * za
        xb, yb, zb = x + h2 * a2, y + h2 * b2, z + h2 * c2
        a3, b3, c3 = sigma * (yb - xb), xb * (rho - zb) - yb, xb * yb - beta * zb
        xc, yc, zc = x + dt * a3, y + dt * b3, z + dt * c3
        a4, b4, c4 = sigma * (yc - xc), xc * (rho - zc) - yc, xc * yc - beta * zc
        x += h6 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
        y += h6 * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
        z += h6 * (c1 + 2.0 * c2 + 2.0 * c3 + c4)
    return out


class Normalizer:
    """Per-feature z-score: ``transform(x) = (x - mean) / std``, ``inverse`` undoes it."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32)
        std = torch.as_tensor(std, dtype=torch.float32)
        if mean.dim() != 1 or mean.shape != std.shape:
            raise ValueError(
                f"mean and std must be 1-d and of equal shape, got {tuple(mean.shape)} "
                f"and {tuple(std.shape)}")
        if not bool((std > 0).all()):
            raise ValueError(f"std must be > 0 everywhere, got min {float(std.min())}")
        self.mean = mean
        self.std = std

    @classmethod
    def fit(cls, x: torch.Tensor) -> "Normalizer":
        """Mean and (population) std of each column of ``x`` (N, F); std floored at 1e-8."""
        x = torch.as_tensor(x)
        if x.dim() != 2 or x.shape[0] < 1:
            raise ValueError(f"x must have shape (N >= 1, F), got {tuple(x.shape)}")
        x = x.to(torch.float64)
        return cls(x.mean(0), x.std(0, correction=0).clamp_min(1e-8))

    @classmethod
    def identity(cls, n_features: int) -> "Normalizer":
        """A normalizer that changes nothing (mean 0, std 1): used when normalization is off."""
        if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"n_features must be a positive int, got {n_features!r}")
        return cls(torch.zeros(n_features), torch.ones(n_features))

    @property
    def is_identity(self) -> bool:
        return bool((self.mean == 0).all() and (self.std == 1).all())

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std  # (N, F)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean  # (N, F)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        try:
            return cls(torch.tensor(d["mean"]), torch.tensor(d["std"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"d must be a dict with 'mean' and 'std' lists, got {d!r}") from exc

    def __repr__(self) -> str:
        kind = "identity" if self.is_identity else "fitted"
        return f"Normalizer({kind}, features={self.mean.numel()})"


@dataclass
class ReferenceData:
    """The reference train/val splits as fed to the model, plus the normalizers used."""

    train: TensorDataset          # (x (N, 48), y (N, 3)) float32, after normalization
    val: TensorDataset            # same layout, normalized with the training statistics
    input_normalizer: Normalizer
    target_normalizer: Normalizer
    normalized: bool
    task: LorenzTask = REFERENCE_TASK

    def stats(self) -> pd.DataFrame:
        """Mean, std, min, max per split, stage ("raw" or "fed") and feature group.

        Groups are ``input x``/``input y``/``input z`` (that coordinate at every position
        of the window) and ``target x``/``target y``/``target z``. "raw" is the data in
        the system's own units, "fed" what the model receives. This is the table to read
        for the "check input/output normalization" fallback.
        """
        rows = []
        for split, ds in (("train", self.train), ("val", self.val)):
            x_fed, y_fed = ds.tensors
            stages = (("raw", self.input_normalizer.inverse(x_fed),
                       self.target_normalizer.inverse(y_fed)), ("fed", x_fed, y_fed))
            for stage, x, y in stages:
                x = x.reshape(x.shape[0], -1, 3)  # (N, window, 3)
                for kind, t in (("input", x), ("target", y.unsqueeze(1))):
                    for c, name in enumerate(COORDS):
                        v = t[..., c].to(torch.float64)
                        rows.append({
                            "split": split, "stage": stage, "group": f"{kind} {name}",
                            "mean": float(v.mean()), "std": float(v.std(correction=0)),
                            "min": float(v.min()), "max": float(v.max()),
                        })
        return pd.DataFrame(rows, columns=["split", "stage", "group", "mean", "std", "min", "max"])


def make_reference_data(seed: int = 0, normalize: bool = True, *,
                        task: LorenzTask = REFERENCE_TASK) -> ReferenceData:
    """Generate the reference forecasting data set (deterministic for a seed, offline).

    Args:
        seed: picks the trajectory's starting point and the observation noise; the same
            seed gives bit-identical tensors.
        normalize: fit z-score normalizers on the training split and apply them to both
            splits; with False the raw values are fed (identity normalizers).
        task: the task's constants; ``REFERENCE_TASK`` is the reference experiment.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(normalize, (bool, np.bool_)):
        raise ValueError(f"normalize must be a bool, got {normalize!r}")
    if not isinstance(task, LorenzTask):
        raise ValueError(f"task must be a LorenzTask, got {type(task).__name__}")
    seed = int(seed)
    rng = np.random.default_rng(seed)
    t = task
    W, H = t.window, t.horizon
    span = W + H                      # states one example touches
    n_states = t.n_train + span + span + t.n_val  # train windows, gap, val windows
    x0 = np.array([1.0, 1.0, 1.0]) + rng.standard_normal(3)
    states = lorenz_trajectory(x0, t.burn_in + n_states, t.dt, t.sigma, t.rho, t.beta)
    states = states[t.burn_in:]       # (n_states, 3)
    if t.noise > 0:
        states = states + rng.standard_normal(states.shape) * (t.noise * states.std(axis=0))

    def windows(starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = starts[:, None] + np.arange(W)[None, :]          # (N, W)
        x = states[idx].reshape(len(starts), 3 * W)             # (N, 3W), time-major
        y = states[starts + W - 1 + H]                          # (N, 3)
        return (torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32)))

    x_tr, y_tr = windows(np.arange(t.n_train))
    # The last training target is state n_train - 1 + W - 1 + H; start validation a full
    # example length after that so no validation input or target was seen in training.
    x_va, y_va = windows(t.n_train + span + np.arange(t.n_val))

    if normalize:
        in_norm, out_norm = Normalizer.fit(x_tr), Normalizer.fit(y_tr)
    else:
        in_norm, out_norm = Normalizer.identity(x_tr.shape[1]), Normalizer.identity(3)
    return ReferenceData(
        train=TensorDataset(in_norm.transform(x_tr), out_norm.transform(y_tr)),
        val=TensorDataset(in_norm.transform(x_va), out_norm.transform(y_va)),
        input_normalizer=in_norm,
        target_normalizer=out_norm,
        normalized=bool(normalize),
        task=task,
    )
