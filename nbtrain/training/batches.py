"""Batches for the training loop: a reproducible per-epoch order, and grouping for accumulation.

The order of epoch ``e`` is ``torch.randperm(n)`` drawn from a generator seeded with
``seed * 100003 + e`` (no shuffling: the data's own order). Tensor data is moved to the
device once, permuted there once per epoch (the generator and the permutation on that
device: the same seed gives the same run on the same device) and cut into contiguous slices
(views, no per-sample gathering); other datasets go through a DataLoader with that
permutation (drawn on the CPU) as sampler, pinned memory and non-blocking copies on CUDA; a
DataLoader given by the caller is used as is, its batches moved to the device.
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .devices import to_device


class Batches:
    """Per-epoch batches of ``data`` (a Dataset, a DataLoader or a tuple of tensors) on ``device``."""

    def __init__(self, data, batch_size: int, shuffle: bool, seed: int, device: torch.device | None = None) -> None:
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.loader: DataLoader | None = None
        self.tensors: tuple[torch.Tensor, ...] | None = None
        self.dataset: Dataset | None = None
        if isinstance(data, DataLoader):
            self.loader = data
        elif isinstance(data, TensorDataset):
            self.tensors = tuple(t.to(self.device) for t in data.tensors)
        elif isinstance(data, Dataset):
            self.dataset = data
        elif isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
            self.tensors = tuple(t.to(self.device) for t in data)
        else:
            raise TypeError(
                f"data must be a torch Dataset, a DataLoader or a tuple of tensors, got {type(data).__name__}"
            )

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.loader is not None:
            return len(self.loader)
        return math.ceil(self.n_samples / self.batch_size)

    @property
    def n_samples(self) -> int:
        if self.loader is not None:
            return len(self.loader.dataset)
        return len(self.tensors[0]) if self.tensors is not None else len(self.dataset)

    def _perm(self, epoch: int, n: int, device: torch.device) -> torch.Tensor | None:
        if not self.shuffle:
            return None
        g = torch.Generator(device=device).manual_seed(self.seed * 100003 + epoch)
        return torch.randperm(n, generator=g, device=device)

    def _moved(self, batches: Iterable) -> Iterator:
        for batch in batches:
            yield to_device(batch, self.device)

    def epoch(self, epoch: int) -> Iterator[tuple]:
        """The batches of epoch ``epoch``, in that epoch's order."""
        if self.loader is not None:
            yield from self._moved(self.loader)
            return
        if self.tensors is not None:
            n = len(self.tensors[0])
            perm = self._perm(epoch, n, self.device)
            tensors = self.tensors if perm is None else tuple(t[perm] for t in self.tensors)
            for i in range(0, n, self.batch_size):
                yield tuple(t[i : i + self.batch_size] for t in tensors)
            return
        perm = self._perm(epoch, len(self.dataset), torch.device("cpu"))
        sampler = None if perm is None else perm.tolist()
        pin = self.device.type == "cuda"
        yield from self._moved(DataLoader(self.dataset, batch_size=self.batch_size, sampler=sampler, pin_memory=pin))


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of a batch given as a pair or as a dict with "x" and "y"."""
    if isinstance(batch, dict):
        return batch["x"], batch["y"]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(f"each batch must be (inputs, targets), got {type(batch).__name__}")


def grouped(batches: Iterable, n: int) -> Iterator[list]:
    """Consecutive groups of ``n`` batches (the last one may be shorter): one optimizer step each."""
    group: list = []
    for b in batches:
        group.append(b)
        if len(group) == n:
            yield group
            group = []
    if group:
        yield group


__all__ = ["Batches", "grouped", "split_batch"]
