"""Training configuration: one small dataclass, validated on construction."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_write_text

SCHEDULERS = ("plateau", "cosine_warm_restarts", "none")
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")  # "auto": CUDA, then MPS, then the CPU
PRECISIONS = ("32", "bf16-mixed", "16-mixed")  # Lightning's names


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Defaults are the researcher's round 1."""

    lr: float = 2e-5  # Adam learning rate at the start of training
    grad_clip: float | None = 2.0  # max total L2 gradient norm; None switches clipping off
    scheduler: str = "plateau"  # "plateau" (ReduceLROnPlateau), "cosine_warm_restarts" or "none"
    scheduler_patience: int = 5  # plateau: epochs without improvement tolerated before a cut
    scheduler_factor: float = 0.1  # plateau: new_lr = lr * factor
    scheduler_threshold: float = 1e-4  # plateau: relative improvement that counts ("rel" mode)
    scheduler_cooldown: int = 0  # plateau: epochs to wait after a cut before counting again
    min_lr: float = 0.0  # plateau: floor; cosine: eta_min
    cosine_t0: int = 2  # cosine warm restarts: epochs in the first cycle
    cosine_t_mult: int = 1  # cosine warm restarts: growth of each later cycle
    batch_size: int = 8  # samples per micro-batch
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    epochs: int = 7  # epochs to train (0-based in the history)
    seed: int = 0  # model init, shuffling and dropout
    data_seed: int | None = 0  # reference data set (one fixed set, like real data); None: use `seed`
    normalize: bool = True  # reference data: z-score inputs and targets (train-split statistics)
    weight_decay: float = 0.0  # Adam's L2 penalty
    compile: bool = False  # torch.compile the forward+loss (Adam per fused_adam)
    fused_adam: bool = True  # Adam's fused kernel; False: PyTorch's default Adam (the runs made before this field)
    device: str = "auto"  # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N" or "mps"
    precision: str = "32"  # "32", "bf16-mixed" (autocast) or "16-mixed" (autocast and a GradScaler)
    name: str = ""  # a label for reports and plots

    def __post_init__(self) -> None:
        _check_number("lr", self.lr, low=0.0, low_inclusive=False)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, low=0.0, low_inclusive=False)
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(map(repr, SCHEDULERS))}, got {self.scheduler!r}")
        _check_int("scheduler_patience", self.scheduler_patience, low=0)
        _check_number("scheduler_factor", self.scheduler_factor, low=0.0, low_inclusive=False)
        if self.scheduler_factor >= 1.0:
            raise ValueError(f"scheduler_factor must be < 1, got {self.scheduler_factor!r}")
        _check_number("scheduler_threshold", self.scheduler_threshold, low=0.0)
        _check_int("scheduler_cooldown", self.scheduler_cooldown, low=0)
        _check_number("min_lr", self.min_lr, low=0.0)
        _check_int("cosine_t0", self.cosine_t0, low=1)
        _check_int("cosine_t_mult", self.cosine_t_mult, low=1)
        _check_int("batch_size", self.batch_size, low=1)
        _check_int("grad_accum_steps", self.grad_accum_steps, low=1)
        _check_int("epochs", self.epochs, low=1)
        _check_int("seed", self.seed, low=0)
        if self.data_seed is not None:
            _check_int("data_seed", self.data_seed, low=0)
        _check_bool("normalize", self.normalize)
        _check_number("weight_decay", self.weight_decay, low=0.0)
        _check_bool("compile", self.compile)
        _check_bool("fused_adam", self.fused_adam)
        _check_device(self.device)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {self.precision!r}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}: {self.name!r}")

    # -- derived ----------------------------------------------------------------------
    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.grad_accum_steps

    @property
    def resolved_data_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed

    @property
    def label(self) -> str:
        return self.name or f"lr={self.lr:g} clip={self.grad_clip} patience={self.scheduler_patience}"

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (validated like any new config)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    # -- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return cls(**data)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> "TrainConfig":
        """Parse a JSON string, or read a ``.json`` file."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            if not path.is_file():
                raise FileNotFoundError(f"no config file at {path}")
            text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def _check_number(name: str, value: Any, low: float | None = None, low_inclusive: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None:
        if low_inclusive and value < low:
            raise ValueError(f"{name} must be >= {low:g}, got {value!r}")
        if not low_inclusive and value <= low:
            raise ValueError(f"{name} must be > {low:g}, got {value!r}")


def _check_int(name: str, value: Any, low: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")


def _check_device(value: Any) -> None:
    ok = isinstance(value, str) and (
        value in ("auto", "cpu", "cuda", "mps") or (value.startswith("cuda:") and value[5:].isdigit())
    )
    if not ok:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))} (N a GPU index), got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


__all__ = ["DEVICES", "PRECISIONS", "SCHEDULERS", "TrainConfig"]
