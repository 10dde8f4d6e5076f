"""The pre-clip gradient norm where no hook runs between the backward pass and clipping.

The Hugging Face Trainer (transformers 5.x) clips inside its loop and only then calls
``on_pre_optimizer_step``, so a callback never sees the gradients before clipping.
``GradNormHooks`` registers a post-accumulate-grad hook on each parameter: every time a
backward pass has accumulated into ``p.grad``, the hook stores ``vector_norm(p.grad)`` (on
the device, no sync). After the step's last backward pass the stored norms are those of the
final, unclipped gradients, and ``total()`` combines them the way
``torch.nn.utils.get_total_norm`` does on one device (the norm of the per-parameter norms, in
parameter order). ``reset()`` after each optimizer step forgets parameters that got no
gradient in the next step. Cost: one norm per parameter per backward pass (per micro-batch
under gradient accumulation). Multi-process training (DDP) would see each process's local
gradients before they are averaged: these hooks are for single-process runs.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch


class GradNormHooks:
    """Per-parameter gradient norms taken as the backward pass accumulates them."""

    def __init__(self, parameters: Iterable[torch.Tensor], norm_type: float = 2.0) -> None:
        self.norm_type = float(norm_type)
        self.params = [p for p in parameters if p.requires_grad]
        self._norms: list[torch.Tensor | None] = [None] * len(self.params)
        self._handles = [p.register_post_accumulate_grad_hook(self._hook(i)) for i, p in enumerate(self.params)]

    def _hook(self, index: int):
        def hook(param: Any) -> None:
            if param.grad is not None:
                self._norms[index] = torch.linalg.vector_norm(param.grad.detach(), self.norm_type)
        return hook

    def total(self) -> torch.Tensor | None:
        """The total norm of the gradients seen since the last ``reset`` (None when none)."""
        norms = [n for n in self._norms if n is not None]
        if not norms:
            return None
        device = norms[0].device
        return torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]), self.norm_type)

    def reset(self) -> None:
        self._norms = [None] * len(self.params)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


__all__ = ["GradNormHooks"]
