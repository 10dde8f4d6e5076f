"""ReduceLROnPlateau, simulated: what torch's scheduler did, and what it will do next.

``simulate_plateau`` replays ``torch.optim.lr_scheduler.ReduceLROnPlateau.step`` on a list
of validation losses with plain Python floats, in the same order of operations as torch:

1. ``current`` is "better" than ``best`` only if it beats the dynamic threshold:
   ``best * (1 - threshold)`` (min, rel), ``best - threshold`` (min, abs),
   ``best * (1 + threshold)`` (max, rel) or ``best + threshold`` (max, abs).
   ``best`` starts at +inf (min) or -inf (max); NaN is never better.
2. Better: ``best = current`` and the bad-epoch counter resets; otherwise it grows by one.
3. During cooldown the cooldown counter drops by one and the bad-epoch counter is zeroed.
4. When the counter EXCEEDS ``patience`` (the (patience+1)-th bad epoch in a row) every
   LR becomes ``max(old * factor, min_lr)``, unless ``old - new <= eps``; then the
   cooldown counter is set to ``cooldown`` and the bad-epoch counter to 0.

``plateau_state`` returns the scheduler's state after those steps, plus where the next
cut comes if nothing improves, and where Keras's ``ReduceLROnPlateau`` would cut: Keras
cuts when its wait counter REACHES ``patience`` and compares with an absolute
``min_delta`` (taken here as ``threshold``), so it cuts one epoch earlier than torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

from ..files import to_json_safe

MODES = ("min", "max")
THRESHOLD_MODES = ("rel", "abs")


@dataclass
class PlateauState:
    """The scheduler's state after the last given epoch (epochs are 0-based).

    ``best``, ``best_epoch`` and ``improvement_threshold`` are None before any epoch
    improved (no epochs, or only NaN). ``next_cut_epoch`` is None when the LR can no
    longer be cut (it is at ``min_lr``, or the cut would be smaller than ``eps``).
    """

    best: float | None  # best value so far, in the scheduler's sense
    best_epoch: int | None  # epoch that set ``best``
    improvement_threshold: float | None  # the value the next epoch must beat
    num_bad_epochs: int  # torch's counter after the last epoch
    cooldown_counter: int  # epochs of cooldown left
    lr: float  # LR in force after the last epoch's step
    cuts: list[tuple[int, float, float]] = field(default_factory=list)  # (epoch, old, new)
    next_cut_epoch: int | None = None  # end of this epoch brings the next cut if nothing improves
    keras_cut_epoch: int | None = None  # same for Keras's callback (wait >= patience, absolute min_delta)
    keras_cuts: list[int] = field(default_factory=list)  # epochs where Keras would already have cut
    epochs_seen: int = 0  # number of values replayed
    patience: int = 0
    mode: str = "min"
    threshold: float = 1e-4
    threshold_mode: str = "rel"

    @property
    def epochs_since_best(self) -> int | None:
        return None if self.best_epoch is None else self.epochs_seen - 1 - self.best_epoch

    def to_dict(self) -> dict:
        """Plain JSON-safe dict (non-finite floats encoded by ``files.to_json_safe``)."""
        data = asdict(self)
        data["cuts"] = [list(c) for c in self.cuts]
        data["epochs_since_best"] = self.epochs_since_best
        return to_json_safe(data)


# -- validation ------------------------------------------------------------------------
def _check(
    val_losses, lr, patience, factor, threshold, threshold_mode, cooldown, min_lr, mode, eps
) -> list[float]:
    if isinstance(val_losses, (str, bytes)) or not hasattr(val_losses, "__iter__"):
        raise TypeError(f"val_losses must be a sequence of numbers, got {type(val_losses).__name__}")
    values = []
    for i, v in enumerate(val_losses):
        if isinstance(v, bool):
            raise TypeError(f"val_losses[{i}] must be a number, got {v!r}")
        try:
            values.append(float(v))
        except (TypeError, ValueError):
            raise TypeError(f"val_losses[{i}] must be a number, got {v!r}") from None
    _number("lr", lr, low=0.0, strict=True)
    _integer("patience", patience)
    _number("factor", factor, low=0.0)
    if factor >= 1.0:
        raise ValueError(f"factor must be < 1, got {factor!r}")
    _number("threshold", threshold, low=0.0)
    if threshold_mode not in THRESHOLD_MODES:
        raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
    _integer("cooldown", cooldown)
    _number("min_lr", min_lr, low=0.0)
    if mode not in MODES:
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    _number("eps", eps, low=0.0)
    return values


def _number(name: str, value, low: float, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or (strict and value == low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value!r}")


def _integer(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")


# -- torch's rules ---------------------------------------------------------------------
def _dynamic_threshold(best: float, mode: str, threshold: float, threshold_mode: str) -> float:
    if mode == "min":
        return best * (1.0 - threshold) if threshold_mode == "rel" else best - threshold
    return best * (threshold + 1.0) if threshold_mode == "rel" else best + threshold


def _is_better(current: float, best: float, mode: str, threshold: float, threshold_mode: str) -> bool:
    # Same expressions as torch's ReduceLROnPlateau._is_better.
    if mode == "min" and threshold_mode == "rel":
        return current < best * (1.0 - threshold)
    if mode == "min":
        return current < best - threshold
    if threshold_mode == "rel":
        return current > best * (threshold + 1.0)
    return current > best + threshold


class _Torch:
    """One ReduceLROnPlateau, stepped by hand."""

    def __init__(self, lr, patience, factor, threshold, threshold_mode, cooldown, min_lr, mode, eps):
        self.lr = float(lr)
        self.patience, self.factor, self.cooldown = patience, factor, cooldown
        self.threshold, self.threshold_mode, self.mode = threshold, threshold_mode, mode
        self.min_lr, self.eps = min_lr, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.cuts: list[tuple[int, float, float]] = []

    def can_cut(self) -> bool:
        return self.lr - max(self.lr * self.factor, self.min_lr) > self.eps

    def step(self, epoch: int, current: float | None, force_better: bool = False) -> None:
        """``current=None`` means "a value that does not improve" (for projections);
        ``force_better`` means "a value that improves" (a first best, for projections)."""
        if force_better or (
            current is not None and _is_better(current, self.best, self.mode, self.threshold, self.threshold_mode)
        ):
            self.best = current if current is not None else self.best
            self.best_epoch = epoch
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.lr = new
                self.cuts.append((epoch, old, new))
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0


class _Keras:
    """Keras's ReduceLROnPlateau.on_epoch_end, cut epochs only (LR values are torch's)."""

    def __init__(self, patience, min_delta, cooldown, mode):
        self.patience, self.min_delta, self.cooldown, self.mode = patience, min_delta, cooldown, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0
        self.cuts: list[int] = []

    def step(self, epoch: int, current: float | None, force_better: bool = False) -> bool:
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        better = force_better or current is not None and (
            current < self.best - self.min_delta if self.mode == "min" else current > self.best + self.min_delta
        )
        if better:
            self.best = current if current is not None else self.best
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= max(self.patience, 1):
                self.cuts.append(epoch)
                self.cooldown_counter = self.cooldown
                self.wait = 0
                return True
        return False


def _project_torch(sched: _Torch, start_epoch: int) -> int | None:
    if not sched.can_cut():
        return None
    n_cuts = len(sched.cuts)
    first = start_epoch
    if sched.best_epoch is None:
        # no best yet: the next (finite) value becomes the best, then the bad epochs start
        sched.step(first, None, force_better=True)
        first += 1
    for epoch in range(first, first + sched.patience + sched.cooldown + 3):
        sched.step(epoch, None)
        if len(sched.cuts) > n_cuts:
            return epoch
    return None  # pragma: no cover - the loop always reaches a cut


def _project_keras(keras: _Keras, start_epoch: int) -> int | None:
    first = start_epoch
    if keras.best in (math.inf, -math.inf):
        keras.step(first, None, force_better=True)
        first += 1
    for epoch in range(first, first + keras.patience + keras.cooldown + 3):
        if keras.step(epoch, None):
            return epoch
    return None  # pragma: no cover


# -- public ----------------------------------------------------------------------------
def simulate_plateau(
    val_losses: Sequence[float],
    lr: float,
    patience: int,
    factor: float = 0.1,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
    mode: str = "min",
    eps: float = 1e-8,
) -> list[float]:
    """The LR in force after each epoch's ``scheduler.step(val_loss)``, exactly as torch has it.

    >>> simulate_plateau([1.0, 1.0, 1.0], lr=0.1, patience=1)
    [0.1, 0.1, 0.010000000000000002]
    """
    values = _check(val_losses, lr, patience, factor, threshold, threshold_mode, cooldown, min_lr, mode, eps)
    sched = _Torch(lr, patience, factor, threshold, threshold_mode, cooldown, min_lr, mode, eps)
    out = []
    for epoch, v in enumerate(values):
        sched.step(epoch, v)
        out.append(sched.lr)
    return out


def keras_plateau_cuts(
    val_losses: Sequence[float],
    patience: int,
    min_delta: float = 1e-4,
    cooldown: int = 0,
    mode: str = "min",
) -> list[int]:
    """The epochs (0-based) at whose end Keras's ``ReduceLROnPlateau`` cuts the LR: its wait
    counter REACHES ``patience``; an improvement must beat the best by the absolute ``min_delta``.

    >>> keras_plateau_cuts([1.0, 1.0, 1.0], patience=1)
    [1, 2]
    """
    values = _check(val_losses, 1.0, patience, 0.1, min_delta, "abs", cooldown, 0.0, mode, 0.0)
    keras = _Keras(patience, min_delta, cooldown, mode)
    for epoch, v in enumerate(values):
        keras.step(epoch, v)
    return list(keras.cuts)


def plateau_state(
    val_losses: Sequence[float],
    lr: float,
    patience: int,
    factor: float = 0.1,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
    mode: str = "min",
    eps: float = 1e-8,
) -> PlateauState:
    """The scheduler's state after ``val_losses``, and when it (and Keras) would cut next.

    The projections assume every further epoch fails to improve on the best.
    """
    values = _check(val_losses, lr, patience, factor, threshold, threshold_mode, cooldown, min_lr, mode, eps)
    sched = _Torch(lr, patience, factor, threshold, threshold_mode, cooldown, min_lr, mode, eps)
    keras = _Keras(patience, threshold, cooldown, mode)
    for epoch, v in enumerate(values):
        sched.step(epoch, v)
        keras.step(epoch, v)
    has_best = sched.best_epoch is not None
    state = PlateauState(
        best=sched.best if has_best else None,
        best_epoch=sched.best_epoch,
        improvement_threshold=_dynamic_threshold(sched.best, mode, threshold, threshold_mode) if has_best else None,
        num_bad_epochs=sched.num_bad_epochs,
        cooldown_counter=sched.cooldown_counter,
        lr=sched.lr,
        cuts=list(sched.cuts),
        keras_cuts=list(keras.cuts),
        epochs_seen=len(values),
        patience=patience,
        mode=mode,
        threshold=threshold,
        threshold_mode=threshold_mode,
    )
    state.next_cut_epoch = _project_torch(sched, len(values))
    state.keras_cut_epoch = _project_keras(keras, len(values))
    return state


__all__ = ["PlateauState", "keras_plateau_cuts", "plateau_state", "simulate_plateau"]
