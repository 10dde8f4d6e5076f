"""Tiny synthetic regression tasks that train in milliseconds (shared by the tests)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


def make_regression(n: int = 96, features: int = 4, seed: int = 0, noise: float = 0.1):
    """``n`` samples of one fixed linear function plus noise; ``seed`` picks the samples."""
    w = torch.randn(features, 1, generator=torch.Generator().manual_seed(12345))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = x @ w + noise * torch.randn(n, 1, generator=g)
    return x, y


def make_mlp(features: int = 4, hidden: int = 16, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))


class PlainDataset(Dataset):
    """A map-style dataset that is not a TensorDataset (the trainer reads it through a DataLoader)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class DropoutNet(torch.nn.Module):
    """A small net with dropout (its own fixed init, seed 3): resume tests need the RNG state restored."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                       torch.nn.Linear(32, 1))

    def forward(self, x):  # (B, 4) -> (B, 1)
        return self.net(x)
