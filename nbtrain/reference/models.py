"""The reference model: a plain MLP the size of the researcher's (about 671K parameters).

Used by ``nbtrain.train`` when no model is given. Any ``torch.nn.Module`` works with the
trainer; this one exists so the round-1 reproduction has a concrete, inspectable network.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ReferenceModel", "count_parameters"]


def _check_positive_int(name: str, value: object) -> None:
    # bool is an int subclass; True as a layer width is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class ReferenceModel(nn.Module):
    """MLP ``in_features -> hidden x depth (GELU) -> out_features`` for the reference task.

    With the defaults (48 -> 403 x 5 -> 3) it has 672,207 trainable parameters, within
    0.2% of the 671K of the model in the training log that nbtrain reproduces.

    Why this architecture:

    * Size: the symptoms in the log (gradient norms growing from < 2 to 12-18, a plateau the
      scheduler never reacts to) were seen on a ~671K-parameter regression model, so the
      reference uses the same parameter budget and the same optimiser settings.
    * Plainness: no normalization layers, no dropout, no residual connections, no custom
      initialisation (PyTorch's default ``nn.Linear`` init). Nothing in the network damps
      or rescales gradients, so what the gradient norms do is decided by the data and the
      optimiser dynamics alone, which is what the diagnostics are meant to explain.
    * Depth: five hidden layers rather than three wider ones of the same budget. The
      gradient of a deep plain network is a product of one factor per layer, so as the
      weights grow and align while it learns a steep target, the gradient norm grows
      faster with depth. Measured on the reference task with the round-1 settings: the
      largest norm of epochs 5-6 was 5.5-8.1x the largest of epoch 0 over seeds 0-4 for
      this net, against 2.3x (seed 0) for a 48 -> 566 x 3 -> 3 MLP of 671,279 parameters.
    * Shape: the input is a flattened window of past states of a chaotic system
      (16 steps x 3 coordinates = 48 features, see ``nbtrain.data``) and the output is the
      3-coordinate state some steps ahead. GELU keeps the learned map smooth, so its
      steepness (and with it the gradient norm) can grow gradually as training proceeds.

    Args:
        in_features: input width (default 48 = 16 past states x 3 coordinates).
        hidden: width of every hidden layer (default 403).
        depth: number of hidden layers (default 5).
        out_features: output width (default 3: the x, y, z of the future state).
    """

    def __init__(self, in_features: int = 48, hidden: int = 403, depth: int = 5,
                 out_features: int = 3) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("hidden", hidden),
                            ("depth", depth), ("out_features", out_features)):
            _check_positive_int(name, value)
        self.in_features = in_features
        self.out_features = out_features
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, in_features)
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"x must have shape (batch, {self.in_features}), got {tuple(x.shape)}")
        return self.net(x)  # (B, out_features)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (those with ``requires_grad``) of ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
