"""Devices and precisions: what a config asks for, resolved against what this machine has.

``resolve_device("auto")`` is CUDA when there is a GPU, else Apple's MPS, else the CPU;
``"cuda"`` is the current CUDA device, ``"cuda:N"`` GPU N, ``"mps"`` and ``"cpu"`` themselves.
Asking for a device that is not there is a ``ValueError`` that says what is available.

Moving: ``to_device`` moves a batch (a tensor, or tuples, lists and dicts of them) with
non-blocking copies on CUDA; ``to_cpu`` gives a state dict whose tensors all live on the CPU
(checkpoints hold no device-specific tensors); ``rng_state``/``set_rng_state`` carry the
device's own random generator (dropout on CUDA or MPS draws from it, not from the CPU's).
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


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it on ``device`` (non-blocking copies on CUDA)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, (tuple, list)):
        return _same_sequence(batch, [to_device(b, device) for b in batch])
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def to_cpu(state: Any) -> Any:
    """A copy of a nested state (dicts, lists, tuples) with every tensor on the CPU."""
    if isinstance(state, torch.Tensor):
        return state.cpu()
    if isinstance(state, dict):
        return {k: to_cpu(v) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return _same_sequence(state, [to_cpu(v) for v in state])
    return state


def _same_sequence(original: tuple | list, items: list) -> tuple | list:
    """``items`` in the type of ``original`` (a list, a tuple or a named tuple)."""
    if isinstance(original, tuple) and hasattr(original, "_fields"):
        return type(original)(*items)
    return type(original)(items)


def rng_state(device: torch.device) -> dict | None:
    """The device's own generator state (a CPU tensor) with its device type; None on the CPU."""
    if device.type == "cuda":
        return {"type": "cuda", "state": torch.cuda.get_rng_state(device)}
    if device.type == "mps":
        return {"type": "mps", "state": torch.mps.get_rng_state()}
    return None


def set_rng_state(saved: dict | None, device: torch.device) -> None:
    """Restore ``rng_state``'s value on a device of the same type (another type: nothing to restore)."""
    if not saved or saved.get("type") != device.type:
        return
    if device.type == "cuda":
        torch.cuda.set_rng_state(saved["state"], device)
    elif device.type == "mps":
        torch.mps.set_rng_state(saved["state"])


__all__ = ["AUTOCAST_DTYPES", "autocast_dtype", "available", "cuda_count", "model_device", "mps_available",
           "resolve_device", "rng_state", "set_rng_state", "to_cpu", "to_device"]
