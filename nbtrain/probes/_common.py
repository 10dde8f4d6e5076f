"""What every probe shares: argument checks, access to examples and batches, and putting state back.

``restoring`` is the promise all probes keep: whatever a probe changes (parameters,
buffers, ``.grad``, train/eval mode, optimizer state, the torch RNG) is put back, so a
run after a probe is the run without it, bit for bit.

Devices: a probe runs where the model is (``nbtrain.training.devices.model_device``).
Batches are moved there (``devices.to_device``: non-blocking copies on CUDA), never the model;
what a probe creates is made there too, except random draws, which come from a CPU
generator seeded with the probe's ``seed`` (so the same seed picks the same batches and
the same start vector on every device) and are then moved.
"""

from __future__ import annotations

import copy
import math
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..training.devices import model_device, to_device

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- argument checks -------------------------------------------------------------------------
def check_int(name: str, value, low: int) -> None:
    """Raise unless ``value`` is an int (not a bool) of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")


def check_positive(name: str, value) -> None:
    """Raise unless ``value`` is a finite number above zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def check_model(model) -> list[torch.Tensor]:
    """The trainable parameters of ``model``; raise when it is not a Module or has none."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    return params


def default_loss(loss_fn: LossFn | None) -> LossFn:
    """``loss_fn``, or mean squared error when None (the reference experiment's loss)."""
    return loss_fn if loss_fn is not None else nn.MSELoss()


# -- data ------------------------------------------------------------------------------------
class Examples:
    """Random access to the examples of a Dataset, a DataLoader's dataset or a tuple of tensors."""

    def __init__(self, data) -> None:
        self.tensors: tuple[torch.Tensor, ...] | None = None
        self.dataset: Dataset | None = None
        if isinstance(data, DataLoader):
            data = data.dataset
        if isinstance(data, TensorDataset):
            self.tensors = tuple(data.tensors)
        elif isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
            if len(data[0]) != len(data[1]):
                raise ValueError(f"inputs and targets differ in length: {len(data[0])} vs {len(data[1])}")
            self.tensors = tuple(data)
        elif isinstance(data, Dataset):
            self.dataset = data
        else:
            raise TypeError(
                f"data must be a torch Dataset, a DataLoader or a tuple (inputs, targets), got {type(data).__name__}"
            )
        if len(self) == 0:
            raise ValueError("data is empty")

    def __len__(self) -> int:
        return len(self.tensors[0]) if self.tensors is not None else len(self.dataset)  # type: ignore[arg-type]

    def take(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples at ``idx`` as one ``(x, y)`` batch on ``device``."""
        if self.tensors is not None:
            x, y = (t[idx] for t in self.tensors)
        else:
            from torch.utils.data import default_collate

            batch = default_collate([self.dataset[int(i)] for i in idx])  # type: ignore[index]
            x, y = (batch["x"], batch["y"]) if isinstance(batch, dict) else batch
        return to_device(x, device), to_device(y, device)

    def stream(self, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[tuple]:
        """Endless batches: each pass is a fresh permutation, cut into full batches."""
        n = len(self)
        while True:
            perm = torch.randperm(n, generator=generator)
            for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
                yield self.take(perm[i : i + batch_size], device)


def as_batch(batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch: ``(x, y)``, a dict with ``x``/``y``, or a whole (small) dataset."""
    if isinstance(batch, dict):
        batch = (batch["x"], batch["y"])
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch):
        return to_device(batch[0], device), to_device(batch[1], device)
    if isinstance(batch, (Dataset, DataLoader)):
        ex = Examples(batch)
        return ex.take(torch.arange(len(ex)), device)
    raise TypeError(f"batch must be (inputs, targets) tensors or a Dataset, got {type(batch).__name__}")


def flat_grad(loss: torch.Tensor, params: list[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """d loss / d params as one flat vector (zeros for parameters the loss does not use); ``out`` as in ``flatten``."""
    return flatten(torch.autograd.grad(loss, params, allow_unused=True), params, out)


def flatten(tensors, like: list[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """One flat vector of ``tensors`` (None: zeros shaped like the matching ``like`` tensor).

    ``out``: a vector of the total length to write it into (it may be of a wider dtype: the
    values are converted exactly, float32 into float64). A probe that flattens many times
    reuses one such buffer instead of allocating (and page-faulting in) a new one each time.
    """
    parts = [(torch.zeros_like(p) if t is None else t).reshape(-1) for t, p in zip(tensors, like)]
    return torch.cat(parts) if out is None else torch.cat(parts, out=out)


# -- restoring state -------------------------------------------------------------------------
def _accelerators(model: nn.Module) -> dict[str, list[int]]:
    """The model's accelerator devices, by type: ``{"cuda": [0, 1], "mps": [0]}`` (the CPU is not one)."""
    found: dict[str, set[int]] = {}
    for t in [*model.parameters(), *model.buffers()]:
        if t.device.type not in ("cpu", "meta"):
            found.setdefault(t.device.type, set()).add(t.device.index or 0)
    return {kind: sorted(indices) for kind, indices in found.items()}


def _seed(seed: int, accelerators: dict[str, list[int]]) -> None:
    """Seed the CPU generator and those of the model's devices (no others: they are not restored)."""
    torch.default_generator.manual_seed(seed)
    for kind, indices in accelerators.items():
        if kind == "cuda":
            for i in indices:
                with torch.cuda.device(i):
                    torch.cuda.manual_seed(seed)
        else:
            torch.get_device_module(kind).manual_seed(seed)


@contextmanager
def _forked_rng(accelerators: dict[str, list[int]]):
    """The CPU RNG and that of each of the model's devices, put back on exit."""
    with ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=[]))  # the CPU generator
        for kind, indices in accelerators.items():
            stack.enter_context(torch.random.fork_rng(devices=indices, device_type=kind))
        yield


@contextmanager
def restoring(model: nn.Module, optimizer: torch.optim.Optimizer | None = None, seed: int | None = None):
    """Run a probe, then put back everything it may have changed.

    Parameters and buffers (values, in place, so optimizers holding them stay valid),
    ``.grad`` of every parameter, train/eval mode of every module, the optimizer's
    state and hyperparameters, and the RNG states of the CPU and of the model's devices.
    ``seed`` seeds those RNGs inside (dropout masks, random batches drawn from the global
    RNG), and no others.
    """
    state = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    grads = {p: (None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()}
    modes = {m: m.training for m in model.modules()}
    opt_state = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
    accelerators = _accelerators(model)
    with _forked_rng(accelerators):
        if seed is not None:
            _seed(seed, accelerators)
        try:
            yield
        finally:
            with torch.no_grad():
                for k, v in model.state_dict(keep_vars=True).items():
                    v.copy_(state[k])
            for p, g in grads.items():
                p.grad = g
            for m, training in modes.items():
                m.training = training
            if optimizer is not None:
                optimizer.load_state_dict(opt_state)
