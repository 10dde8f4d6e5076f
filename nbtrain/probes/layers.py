"""Per-layer statistics: a callback recording each layer's gradient, weight and update sizes every epoch.

Rows go to ``history.meta["layer_stats"]``; ``layer_stats_dataframe`` turns them into a
table and ``layer_stats_rows`` reads them back from a History, its dict or the list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..training.callbacks import Callback
from ._common import check_int

if TYPE_CHECKING:  # pragma: no cover
    from ..training.history import History
    from ..training.trainer import Trainer

LAYER_STATS_COLUMNS = (
    "epoch",
    "layer",
    "steps",
    "grad_norm",
    "grad_norm_max",
    "grad_share",
    "weight_norm",
    "update_ratio",
    "epoch_update_ratio",
)


class LayerStats(Callback):
    """Per-layer gradient norm, weight norm and update-to-weight ratio, every epoch.

    Records go to ``trainer.history.meta["layer_stats"]``, one dict per (epoch, layer):
    ``epoch``, ``layer``, ``steps`` (optimizer steps the row covers; fewer than an epoch's
    when the run stopped mid-epoch), ``grad_norm`` (mean over the sampled steps of the
    layer's PRE-clip gradient norm: the post-clip norm divided by the step's clip factor),
    ``grad_norm_max`` (largest sampled), ``grad_share`` (the layer's share of the summed
    squared gradient norms), ``weight_norm`` (at the epoch's end), ``update_ratio`` (mean
    over sampled steps of |w_t - w_{t-1}| / |w_{t-1}|) and ``epoch_update_ratio``
    (|w_end - w_start| / |w_start| over the whole epoch).

    When rows are written: at the epoch's last optimizer step, which the callback tells
    from the trainer's ``steps_per_epoch`` and ``stop_requested``. The step hook comes
    before anything the trainer does at an epoch's end, so the rows are in the History
    (and its checkpoint) whatever the order of the trainer's save and ``on_epoch_end``.
    ``on_epoch_end`` and ``on_train_end`` only close an epoch still open (a stop asked
    after this callback's step hook, a divergence): those rows are in the History in
    memory, and in the run folder from the trainer's next save.

    ``by="parameter"`` keeps each tensor (``0.weight``); ``by="module"`` pools tensors of
    one module (``0``). Cost: every ``grad_every`` steps one ``_foreach_norm`` over the
    gradients and a few tiny vector ops, every ``update_every`` steps one copy of the
    weights for the step-update ratio, all on the device; the host sees the numbers once
    per epoch. At the defaults that is about 1-2% of a reference-experiment epoch.

    Steps that fp16's loss scaler skipped (``row["skipped"]``) count in ``steps`` but are
    not sampled: their gradients overflowed and the weights did not move (an update being
    measured is measured at the next step that is taken). Everything stays on the model's
    device.
    """

    def __init__(self, by: str = "parameter", grad_every: int = 4, update_every: int = 25) -> None:
        if by not in ("parameter", "module"):
            raise ValueError(f"by must be 'parameter' or 'module', got {by!r}")
        check_int("grad_every", grad_every, 1)
        check_int("update_every", update_every, 1)
        self.by = by
        self.grad_every = grad_every
        self.update_every = update_every
        self._epoch: int | None = None
        self._steps = 0
        self._done = False

    # -- hooks
    def on_train_begin(self, trainer: "Trainer") -> None:
        names = {id(p): n for n, p in trainer.model.named_parameters()}
        self.params = list(trainer.params)
        pnames = [names.get(id(p), f"param{i}") for i, p in enumerate(self.params)]
        groups = [n.rsplit(".", 1)[0] if "." in n else n for n in pnames] if self.by == "module" else pnames
        self.layers = list(dict.fromkeys(groups))
        self.index = torch.tensor([self.layers.index(g) for g in groups], device=self.params[0].device)
        trainer.history.meta.setdefault("layer_stats", [])
        self._epoch, self._steps, self._done = None, 0, False
        self._end_snapshot = [p.detach().clone() for p in self.params]
        self._prev = [p.detach().clone() for p in self.params]  # reused buffer for step updates

    @torch.no_grad()
    def on_step_end(self, trainer: "Trainer", row: dict) -> None:
        if self._epoch != row["epoch"]:
            self._close(trainer)
            self._start_epoch(row["epoch"])
        if not row.get("skipped"):  # a step the loss scaler skipped has overflowed gradients and no update
            if self._steps % self.grad_every == 0:
                self._sample_gradients(row.get("clip_factor", 1.0) or 1.0)
            if self._measuring:
                self._measure_update()
        self._steps += 1
        if self._steps >= trainer.steps_per_epoch or trainer.stop_requested:
            self._close(trainer)  # the epoch's last step: nothing of it comes after this hook
        elif (self._steps - 1) % self.update_every == 0:  # measure the next step's update
            torch._foreach_copy_(self._prev, [p.detach() for p in self.params])
            self._measuring = True

    def on_epoch_end(self, trainer: "Trainer", row: dict) -> None:
        self._close(trainer)  # normally closed at its last step already

    def on_train_end(self, trainer: "Trainer") -> None:
        self._close(trainer)  # a run stopped or diverged mid-epoch: the part that ran (``steps`` says how much)

    # -- measuring
    def _pool(self, sq: torch.Tensor) -> torch.Tensor:
        """Per-tensor squared norms -> per-layer squared norms."""
        if self.by == "parameter":
            return sq
        return torch.zeros(len(self.layers), dtype=sq.dtype, device=sq.device).index_add_(0, self.index, sq)

    def _sq_norms(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        return self._pool(torch.stack(torch._foreach_norm(tensors)).float() ** 2)

    def _start_epoch(self, epoch: int) -> None:
        self._epoch, self._steps, self._done = epoch, 0, False
        zeros = [torch.zeros(len(self.layers), device=self.params[0].device) for _ in range(4)]
        self._grad_sum, self._grad_max, self._grad_sq_sum, self._ratio_sum = zeros
        self._ratio_n = self._grad_n = 0
        self._measuring = False
        self._start = self._end_snapshot  # the weights before this epoch's first step

    def _sample_gradients(self, clip_factor: float) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        sq = self._sq_norms(grads) / clip_factor**2  # undo clipping
        norms = sq.sqrt()
        self._grad_sum += norms
        self._grad_sq_sum += sq
        torch.maximum(self._grad_max, norms, out=self._grad_max)
        self._grad_n += 1

    def _measure_update(self) -> None:
        """|w_t - w_{t-1}| / |w_{t-1}|, with the weights before this step in ``self._prev``."""
        w_sq = self._sq_norms(self._prev)
        torch._foreach_sub_(self._prev, self.params)  # now -(w_t - w_{t-1}), in place
        self._ratio_sum += (self._sq_norms(self._prev) / w_sq.clamp_min(1e-30)).sqrt()
        self._ratio_n += 1
        self._measuring = False

    @torch.no_grad()
    def _close(self, trainer: "Trainer") -> None:
        """Write the open epoch's rows (once; nothing when no epoch is open or it had no step)."""
        if self._epoch is None or self._done or not self._steps:
            return
        weights = [p.detach() for p in self.params]
        w_sq = self._sq_norms(weights)
        e_sq = self._sq_norms(torch._foreach_sub(weights, self._start))
        e_ratio = (e_sq / self._sq_norms(self._start).clamp_min(1e-30)).sqrt()
        torch._foreach_copy_(self._end_snapshot, weights)
        n = max(self._grad_n, 1)
        total_sq = self._grad_sq_sum.sum().clamp_min(1e-30)
        ratio = self._ratio_sum / self._ratio_n if self._ratio_n else torch.full_like(w_sq, float("nan"))
        table = torch.stack(
            [self._grad_sum / n, self._grad_max, self._grad_sq_sum / total_sq, w_sq.sqrt(), ratio, e_ratio]
        ).T.cpu().tolist()  # the one host transfer of the epoch
        rows = trainer.history.meta.setdefault("layer_stats", [])
        for layer, values in zip(self.layers, table):
            rows.append(dict(zip(LAYER_STATS_COLUMNS, [self._epoch, layer, self._steps, *values])))
        self._done = True


def layer_stats_rows(source: "History | dict | list") -> list[dict]:
    """The ``LayerStats`` rows of a History, its dict (``History.to_dict()`` or its ``meta``) or the list itself."""
    if isinstance(source, list):
        return source
    if isinstance(source, dict):
        meta = source.get("meta", source)
    else:
        meta = getattr(source, "meta", None)
    if not isinstance(meta, dict):
        raise TypeError(f"history must be a History, its dict or a list of rows, got {type(source).__name__}")
    return meta.get("layer_stats", [])


def layer_stats_dataframe(history: "History | dict | list"):
    """``history.meta["layer_stats"]`` (or the list itself) as a DataFrame, one row per epoch and layer."""
    import pandas as pd

    rows = layer_stats_rows(history)
    if not rows:
        return pd.DataFrame(columns=list(LAYER_STATS_COLUMNS))
    df = pd.DataFrame(rows)
    return df[[c for c in LAYER_STATS_COLUMNS if c in df.columns] + [c for c in df.columns if c not in LAYER_STATS_COLUMNS]]


__all__ = ["LAYER_STATS_COLUMNS", "LayerStats", "layer_stats_dataframe", "layer_stats_rows"]
