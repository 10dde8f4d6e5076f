"""Devices and precisions: what a config asks for, resolved against what this machine has.

``resolve_device("auto")`` is CUDA when there is a GPU, else Apple's MPS, else the CPU;
``"cuda"`` is the current CUDA device, ``"cuda:N"`` GPU N, ``"mps"`` and ``"cpu"`` themselves.
Asking for a device that is not there is a ``ValueError`` that says what is available.
"""

from __future__ import annotations

from typing import Any

import torch

AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def cuda_count() -> int:
    """How many CUDA devices torch sees (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available() -> list[str]:
    """The devices this machine offers, as config values: ``["cpu"]`` plus ``"cuda:N"`` and ``"mps"``."""
    return ["cpu"] + [f"cuda:{i}" for i in range(cuda_count())] + (["mps"] if mps_available() else [])


def resolve_device(spec: str | torch.device | Any) -> torch.device:
    """The ``torch.device`` for a config's ``device`` (see the module's docstring)."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec == "auto":
        if cuda_count():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if mps_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if isinstance(spec, str) and (spec == "cuda" or spec.startswith("cuda:")):
        n = cuda_count()
        index = torch.cuda.current_device() if spec == "cuda" and n else int(spec[5:] or 0) if spec != "cuda" else 0
        if index >= n:
            raise ValueError(f"device {spec!r} is not available here: this machine has {', '.join(available())}")
        return torch.device("cuda", index)
    if spec == "mps":
        if not mps_available():
            raise ValueError(f"device 'mps' is not available here: this machine has {', '.join(available())}")
        return torch.device("mps")
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {spec!r}")


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision (None for ``"32"``: no autocast)."""
    return AUTOCAST_DTYPES.get(precision)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters live (the CPU for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


__all__ = ["AUTOCAST_DTYPES", "autocast_dtype", "available", "cuda_count", "model_device", "mps_available",
           "resolve_device"]
